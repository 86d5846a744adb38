{
  # layerpool_native: the handful of Linux syscalls that node:fs does not expose
  # (syncfs, mknod, l*xattr, renameat2, flock). Plain C + Node-API, so the built
  # .node file works with every Node.js release that has Node-API version 8.
  "targets": [
    {
      "target_name": "layerpool_native",
      "sources": ["src/layerpool_native.c"],
      "defines": [
        "NAPI_VERSION=8",
        "_GNU_SOURCE",
        "_FILE_OFFSET_BITS=64"
      ],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [
        ["OS!='linux'", {
          # The syscalls are Linux-only; fail the build with a clear message
          # (the #error in the source) instead of producing a half-working addon.
          "defines": ["LAYERPOOL_NATIVE_UNSUPPORTED_OS=1"]
        }]
      ]
    }
  ]
}
