/*
 * layerpool_native: Linux syscalls that node:fs does not expose.
 *
 *   flock(fd, 'sh'|'ex'|'un', nonBlocking?)  -> boolean
 *   syncfs(path)                             -> undefined
 *   mknod(path, mode, dev)                   -> undefined
 *   makedev(major, minor)                    -> number
 *   lgetxattr(path, name)                    -> Buffer | null   (null on ENODATA)
 *   lsetxattr(path, name, value, flags?)     -> undefined
 *   llistxattr(path)                         -> string[]
 *   lremovexattr(path, name)                 -> undefined
 *   renameat2(oldPath, newPath, flags)       -> undefined
 *   peercred(fd)                             -> { pid, uid, gid }
 *   RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT, XATTR_CREATE, XATTR_REPLACE
 *
 * Every call is synchronous (the callers already run in worker threads). Failed
 * syscalls throw an Error shaped like node:fs errors:
 *   message "ENOENT: no such file or directory, lgetxattr '/x'"
 *   code "ENOENT", errno 2 (positive), syscall "lgetxattr", path "/x" [, dest]
 * Bad arguments throw TypeError / RangeError with Node's ERR_INVALID_ARG_TYPE,
 * ERR_INVALID_ARG_VALUE or ERR_OUT_OF_RANGE codes.
 *
 * The addon keeps no global state, so it can be loaded in several worker threads.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#if !defined(__linux__) || defined(LAYERPOOL_NATIVE_UNSUPPORTED_OS)
#error "layerpool_native only supports Linux (syncfs, renameat2, overlay xattrs)"
#endif

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <node_api.h>
/* Only for the UV_ERRNO_MAP table (error names + Node's messages); no libuv
 * symbol is referenced, so nothing extra is linked. */
#include <uv.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif
#ifndef RENAME_WHITEOUT
#define RENAME_WHITEOUT (1 << 2)
#endif

#define MAX_SAFE_INTEGER 9007199254740991.0
/* Linux keeps device numbers in 32 bits: 12-bit major, 20-bit minor. */
#define DEV_MAJOR_MAX 0xfffu
#define DEV_MINOR_MAX 0xfffffu
/* How often a get/list is retried when the xattr grows between size query and read. */
#define XATTR_RETRIES 16

/* ------------------------------------------------------------------------- */
/* Errors                                                                     */

/* Node-API status failures are programming errors; report them instead of crashing. */
#define NAPI_CALL(env, call)                                                  \
  do {                                                                        \
    if ((call) != napi_ok) {                                                  \
      throw_napi_failure((env), #call);                                       \
      return NULL;                                                            \
    }                                                                         \
  } while (0)

static void throw_napi_failure(napi_env env, const char *what) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return;
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  char msg[512];
  snprintf(msg, sizeof msg, "layerpool_native: Node-API call failed (%s): %s", what,
           info && info->error_message ? info->error_message : "unknown error");
  napi_throw_error(env, "ERR_LAYERPOOL_NATIVE", msg);
}

/* errno -> ("ENOENT", "no such file or directory"), with libuv's (= Node's) wording. */
static void errno_describe(int err, const char **name, const char **desc) {
  switch (-err) {
#define XX(code, message)                                                     \
  case UV_##code:                                                             \
    *name = #code;                                                            \
    *desc = message;                                                          \
    return;
    UV_ERRNO_MAP(XX)
#undef XX
    default:
      break;
  }
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  *name = strerrorname_np(err);
  *desc = strerrordesc_np(err);
#else
  *name = NULL;
  *desc = NULL;
#endif
  if (*name == NULL) *name = "UNKNOWN";
  if (*desc == NULL) *desc = "unknown error";
}

/* Throws Error{code, errno, syscall, path?, dest?} like node:fs does. Returns NULL. */
static napi_value throw_errno(napi_env env, int err, const char *syscall_name,
                              const char *path, size_t path_len, const char *dest,
                              size_t dest_len) {
  const char *name, *desc;
  errno_describe(err, &name, &desc);

  /* "CODE: desc, syscall 'path' -> 'dest'" */
  size_t cap = strlen(name) + strlen(desc) + strlen(syscall_name) + 32 +
               (path ? path_len : 0) + (dest ? dest_len : 0);
  char *msg = malloc(cap);
  if (msg == NULL) {
    napi_throw_error(env, "ENOMEM", "ENOMEM: not enough memory");
    return NULL;
  }
  int n = snprintf(msg, cap, "%s: %s, %s", name, desc, syscall_name);
  size_t len = n > 0 ? (size_t)n : 0;
  if (path) {
    len += (size_t)snprintf(msg + len, cap - len, " '");
    memcpy(msg + len, path, path_len);
    len += path_len;
    msg[len++] = '\'';
  }
  if (dest) {
    len += (size_t)snprintf(msg + len, cap - len, " -> '");
    memcpy(msg + len, dest, dest_len);
    len += dest_len;
    msg[len++] = '\'';
  }
  /* Lower-case a strerror fallback's first letter ("Disk quota..." -> "disk quota..."). */
  size_t desc_at = strlen(name) + 2;
  if (desc_at < len) msg[desc_at] = (char)tolower((unsigned char)msg[desc_at]);

  napi_value js_code, js_msg, error, v;
  bool ok = napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &js_code) == napi_ok &&
            napi_create_string_utf8(env, msg, len, &js_msg) == napi_ok &&
            napi_create_error(env, js_code, js_msg, &error) == napi_ok;
  free(msg);
  if (!ok) {
    throw_napi_failure(env, "create error");
    return NULL;
  }
  if (napi_create_int32(env, err, &v) == napi_ok)
    napi_set_named_property(env, error, "errno", v);
  if (napi_create_string_utf8(env, syscall_name, NAPI_AUTO_LENGTH, &v) == napi_ok)
    napi_set_named_property(env, error, "syscall", v);
  if (path && napi_create_string_utf8(env, path, path_len, &v) == napi_ok)
    napi_set_named_property(env, error, "path", v);
  if (dest && napi_create_string_utf8(env, dest, dest_len, &v) == napi_ok)
    napi_set_named_property(env, error, "dest", v);
  napi_throw(env, error);
  return NULL;
}

static napi_value throw_arg_type(napi_env env, const char *arg, const char *expected) {
  char msg[256];
  snprintf(msg, sizeof msg, "The \"%s\" argument must be %s", arg, expected);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

/* ------------------------------------------------------------------------- */
/* Argument helpers                                                           */

typedef struct {
  char *s;    /* NUL-terminated copy (malloc'd) */
  size_t len; /* bytes, without the NUL */
} cstr;

static void cstr_free(cstr *c) {
  free(c->s);
  c->s = NULL;
}

/* A path: string (UTF-8) or Buffer/Uint8Array (raw bytes, for non-UTF-8 tar names). */
static bool get_path(napi_env env, napi_value v, const char *arg, bool allow_bytes, cstr *out) {
  out->s = NULL;
  out->len = 0;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  if (t == napi_string) {
    size_t len = 0;
    if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return false;
    out->s = malloc(len + 1);
    if (out->s == NULL) {
      napi_throw_error(env, "ENOMEM", "ENOMEM: not enough memory");
      return false;
    }
    if (napi_get_value_string_utf8(env, v, out->s, len + 1, &out->len) != napi_ok) {
      cstr_free(out);
      return false;
    }
  } else {
    bool is_ta = false;
    if (allow_bytes && napi_is_typedarray(env, v, &is_ta) == napi_ok && is_ta) {
      napi_typedarray_type tt;
      size_t n;
      void *data;
      if (napi_get_typedarray_info(env, v, &tt, &n, &data, NULL, NULL) != napi_ok) return false;
      if (tt != napi_uint8_array) {
        throw_arg_type(env, arg, "of type string or an instance of Buffer or Uint8Array");
        return false;
      }
      out->s = malloc(n + 1);
      if (out->s == NULL) {
        napi_throw_error(env, "ENOMEM", "ENOMEM: not enough memory");
        return false;
      }
      if (n) memcpy(out->s, data, n);
      out->s[n] = '\0';
      out->len = n;
    } else {
      throw_arg_type(env, arg,
                     allow_bytes ? "of type string or an instance of Buffer or Uint8Array"
                                 : "of type string");
      return false;
    }
  }
  if (memchr(out->s, '\0', out->len) != NULL) {
    char msg[256];
    snprintf(msg, sizeof msg,
             "The argument '%s' must be a string, Uint8Array, or Buffer without null bytes",
             arg);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", msg);
    cstr_free(out);
    return false;
  }
  return true;
}

/* An integer number in [min, max] (max <= 2^53 - 1). */
static bool get_integer(napi_env env, napi_value v, const char *arg, double min, double max,
                        double *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  if (t != napi_number) {
    throw_arg_type(env, arg, "of type number");
    return false;
  }
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return false;
  if (!isfinite(d) || floor(d) != d || d < min || d > max) {
    char msg[256];
    if (!isfinite(d) || floor(d) != d)
      snprintf(msg, sizeof msg,
               "The value of \"%s\" is out of range. It must be an integer. Received %g", arg, d);
    else
      snprintf(msg, sizeof msg,
               "The value of \"%s\" is out of range. It must be >= %.0f && <= %.0f. Received %.0f",
               arg, min, max, d);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return false;
  }
  *out = d;
  return true;
}

/* An optional integer: undefined -> dflt. */
static bool get_opt_integer(napi_env env, size_t argc, napi_value *argv, size_t i,
                            const char *arg, double min, double max, double dflt, double *out) {
  if (i >= argc) {
    *out = dflt;
    return true;
  }
  napi_valuetype t;
  if (napi_typeof(env, argv[i], &t) != napi_ok) return false;
  if (t == napi_undefined) {
    *out = dflt;
    return true;
  }
  return get_integer(env, argv[i], arg, min, max, out);
}

/* Reads up to `want` arguments; missing ones are `undefined`. */
static bool get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv,
                     size_t *argc) {
  size_t n = want;
  if (napi_get_cb_info(env, info, &n, argv, NULL, NULL) != napi_ok) return false;
  napi_value undef;
  if (napi_get_undefined(env, &undef) != napi_ok) return false;
  for (size_t i = n; i < want; i++) argv[i] = undef;
  if (argc) *argc = n < want ? n : want;
  return true;
}

static napi_value js_undefined(napi_env env) {
  napi_value v = NULL;
  napi_get_undefined(env, &v);
  return v;
}

/* ------------------------------------------------------------------------- */
/* flock(fd, op, nonBlocking?) -> boolean                                     */

static napi_value Flock(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv, NULL)) return NULL;

  double fd;
  if (!get_integer(env, argv[0], "fd", 0, INT_MAX, &fd)) return NULL;

  napi_valuetype t;
  NAPI_CALL(env, napi_typeof(env, argv[1], &t));
  if (t != napi_string) return throw_arg_type(env, "op", "one of 'sh', 'ex' or 'un'");
  char opbuf[4] = {0};
  size_t oplen = 0;
  NAPI_CALL(env, napi_get_value_string_utf8(env, argv[1], opbuf, sizeof opbuf, &oplen));
  int op;
  if (oplen == 2 && strcmp(opbuf, "sh") == 0) op = LOCK_SH;
  else if (oplen == 2 && strcmp(opbuf, "ex") == 0) op = LOCK_EX;
  else if (oplen == 2 && strcmp(opbuf, "un") == 0) op = LOCK_UN;
  else {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE",
                          "The argument 'op' must be one of 'sh', 'ex' or 'un'");
    return NULL;
  }

  bool nonblocking = false;
  NAPI_CALL(env, napi_typeof(env, argv[2], &t));
  if (t == napi_boolean) {
    NAPI_CALL(env, napi_get_value_bool(env, argv[2], &nonblocking));
  } else if (t != napi_undefined) {
    return throw_arg_type(env, "nonBlocking", "of type boolean");
  }
  if (nonblocking) op |= LOCK_NB;

  int r;
  do {
    r = flock((int)fd, op);
  } while (r != 0 && errno == EINTR);
  if (r != 0) {
    int err = errno;
    napi_value result;
    if (nonblocking && (err == EWOULDBLOCK || err == EAGAIN)) {
      NAPI_CALL(env, napi_get_boolean(env, false, &result));
      return result;
    }
    return throw_errno(env, err, "flock", NULL, 0, NULL, 0);
  }
  napi_value result;
  NAPI_CALL(env, napi_get_boolean(env, true, &result));
  return result;
}

/* ------------------------------------------------------------------------- */
/* syncfs(path)                                                               */

static napi_value Syncfs(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  cstr path;
  if (!get_path(env, argv[0], "path", true, &path)) return NULL;

  /* O_NONBLOCK|O_NOCTTY: never hang on a FIFO or grab a tty; syncfs does not care. */
  int fd;
  do {
    fd = open(path.s, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    int err = errno;
    throw_errno(env, err, "open", path.s, path.len, NULL, 0);
    cstr_free(&path);
    return NULL;
  }
  int r = syncfs(fd);
  int err = errno;
  close(fd); /* read-only fd: nothing to lose on close */
  if (r != 0) {
    throw_errno(env, err, "syncfs", path.s, path.len, NULL, 0);
    cstr_free(&path);
    return NULL;
  }
  cstr_free(&path);
  return js_undefined(env);
}

/* ------------------------------------------------------------------------- */
/* mknod(path, mode, dev), makedev(major, minor)                             */

static napi_value Mknod(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv, NULL)) return NULL;
  double mode, dev;
  if (!get_integer(env, argv[1], "mode", 0, 4294967295.0, &mode)) return NULL;
  if (!get_integer(env, argv[2], "dev", 0, MAX_SAFE_INTEGER, &dev)) return NULL;
  cstr path;
  if (!get_path(env, argv[0], "path", true, &path)) return NULL;

  if (mknod(path.s, (mode_t)mode, (dev_t)dev) != 0) {
    int err = errno;
    throw_errno(env, err, "mknod", path.s, path.len, NULL, 0);
    cstr_free(&path);
    return NULL;
  }
  cstr_free(&path);
  return js_undefined(env);
}

static napi_value Makedev(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv, NULL)) return NULL;
  double major_, minor_;
  if (!get_integer(env, argv[0], "major", 0, DEV_MAJOR_MAX, &major_)) return NULL;
  if (!get_integer(env, argv[1], "minor", 0, DEV_MINOR_MAX, &minor_)) return NULL;
  dev_t dev = makedev((unsigned int)major_, (unsigned int)minor_);
  napi_value result;
  NAPI_CALL(env, napi_create_double(env, (double)dev, &result));
  return result;
}

/* ------------------------------------------------------------------------- */
/* Extended attributes (never following symlinks)                            */

static napi_value Lgetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv, NULL)) return NULL;
  cstr path, name;
  if (!get_path(env, argv[0], "path", true, &path)) return NULL;
  if (!get_path(env, argv[1], "name", false, &name)) {
    cstr_free(&path);
    return NULL;
  }

  napi_value result = NULL;
  char *buf = NULL;
  int err = 0;
  for (int attempt = 0;; attempt++) {
    ssize_t size = lgetxattr(path.s, name.s, NULL, 0);
    if (size < 0) {
      err = errno;
      break;
    }
    if (size == 0) {
      if (napi_create_buffer(env, 0, NULL, &result) != napi_ok)
        throw_napi_failure(env, "napi_create_buffer");
      break;
    }
    char *nbuf = realloc(buf, (size_t)size);
    if (nbuf == NULL) {
      err = ENOMEM;
      break;
    }
    buf = nbuf;
    ssize_t got = lgetxattr(path.s, name.s, buf, (size_t)size);
    if (got >= 0) {
      if (napi_create_buffer_copy(env, (size_t)got, buf, NULL, &result) != napi_ok)
        throw_napi_failure(env, "napi_create_buffer_copy");
      break;
    }
    err = errno;
    if (err != ERANGE || attempt + 1 >= XATTR_RETRIES) break; /* ERANGE: it grew; ask again */
    err = 0;
  }
  free(buf);

  if (err == ENODATA) {
    napi_get_null(env, &result);
  } else if (err != 0) {
    throw_errno(env, err, "lgetxattr", path.s, path.len, NULL, 0);
    result = NULL;
  }
  cstr_free(&path);
  cstr_free(&name);
  return result;
}

static napi_value Lsetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  size_t argc;
  if (!get_args(env, info, 4, argv, &argc)) return NULL;

  void *data = NULL;
  size_t size = 0;
  bool is_ta = false, is_dv = false;
  NAPI_CALL(env, napi_is_typedarray(env, argv[2], &is_ta));
  if (is_ta) {
    napi_typedarray_type tt;
    NAPI_CALL(env, napi_get_typedarray_info(env, argv[2], &tt, &size, &data, NULL, NULL));
    if (tt != napi_uint8_array)
      return throw_arg_type(env, "value", "an instance of Buffer or Uint8Array");
  } else {
    NAPI_CALL(env, napi_is_dataview(env, argv[2], &is_dv));
    if (!is_dv) return throw_arg_type(env, "value", "an instance of Buffer or Uint8Array");
    NAPI_CALL(env, napi_get_dataview_info(env, argv[2], &size, &data, NULL, NULL));
  }
  double flags;
  if (!get_opt_integer(env, argc, argv, 3, "flags", 0, INT_MAX, 0, &flags)) return NULL;

  cstr path, name;
  if (!get_path(env, argv[0], "path", true, &path)) return NULL;
  if (!get_path(env, argv[1], "name", false, &name)) {
    cstr_free(&path);
    return NULL;
  }
  napi_value result = NULL;
  if (lsetxattr(path.s, name.s, size ? data : "", size, (int)flags) != 0) {
    int err = errno;
    throw_errno(env, err, "lsetxattr", path.s, path.len, NULL, 0);
  } else {
    result = js_undefined(env);
  }
  cstr_free(&path);
  cstr_free(&name);
  return result;
}

static napi_value Llistxattr(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;
  cstr path;
  if (!get_path(env, argv[0], "path", true, &path)) return NULL;

  char *buf = NULL;
  ssize_t got = 0;
  int err = 0;
  for (int attempt = 0;; attempt++) {
    ssize_t size = llistxattr(path.s, NULL, 0);
    if (size < 0) {
      err = errno;
      break;
    }
    if (size == 0) {
      got = 0;
      break;
    }
    char *nbuf = realloc(buf, (size_t)size);
    if (nbuf == NULL) {
      err = ENOMEM;
      break;
    }
    buf = nbuf;
    got = llistxattr(path.s, buf, (size_t)size);
    if (got >= 0) break;
    err = errno;
    if (err != ERANGE || attempt + 1 >= XATTR_RETRIES) break; /* ERANGE: list grew */
    err = 0;
  }
  if (err != 0) {
    free(buf);
    throw_errno(env, err, "llistxattr", path.s, path.len, NULL, 0);
    cstr_free(&path);
    return NULL;
  }
  cstr_free(&path);

  napi_value array;
  if (napi_create_array(env, &array) != napi_ok) {
    free(buf);
    throw_napi_failure(env, "napi_create_array");
    return NULL;
  }
  /* "user.a\0trusted.b\0" */
  uint32_t idx = 0;
  for (ssize_t off = 0; off < got;) {
    size_t n = strnlen(buf + off, (size_t)(got - off));
    if (n > 0) {
      napi_value s;
      if (napi_create_string_utf8(env, buf + off, n, &s) != napi_ok ||
          napi_set_element(env, array, idx++, s) != napi_ok) {
        free(buf);
        throw_napi_failure(env, "llistxattr result");
        return NULL;
      }
    }
    off += (ssize_t)n + 1;
  }
  free(buf);
  return array;
}

static napi_value Lremovexattr(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv, NULL)) return NULL;
  cstr path, name;
  if (!get_path(env, argv[0], "path", true, &path)) return NULL;
  if (!get_path(env, argv[1], "name", false, &name)) {
    cstr_free(&path);
    return NULL;
  }
  napi_value result = NULL;
  if (lremovexattr(path.s, name.s) != 0) {
    int err = errno;
    throw_errno(env, err, "lremovexattr", path.s, path.len, NULL, 0);
  } else {
    result = js_undefined(env);
  }
  cstr_free(&path);
  cstr_free(&name);
  return result;
}

/* ------------------------------------------------------------------------- */
/* renameat2(oldPath, newPath, flags)                                         */

static int do_renameat2(const char *oldpath, const char *newpath, unsigned int flags) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 28))
  return renameat2(AT_FDCWD, oldpath, AT_FDCWD, newpath, flags);
#elif defined(SYS_renameat2)
  return (int)syscall(SYS_renameat2, AT_FDCWD, oldpath, AT_FDCWD, newpath, flags);
#else
  errno = ENOSYS;
  return -1;
#endif
}

static napi_value Renameat2(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  size_t argc;
  if (!get_args(env, info, 3, argv, &argc)) return NULL;
  double flags;
  if (!get_opt_integer(env, argc, argv, 2, "flags", 0, 4294967295.0, 0, &flags)) return NULL;
  cstr from, to;
  if (!get_path(env, argv[0], "oldPath", true, &from)) return NULL;
  if (!get_path(env, argv[1], "newPath", true, &to)) {
    cstr_free(&from);
    return NULL;
  }
  napi_value result = NULL;
  if (do_renameat2(from.s, to.s, (unsigned int)flags) != 0) {
    int err = errno;
    throw_errno(env, err, "renameat2", from.s, from.len, to.s, to.len);
  } else {
    result = js_undefined(env);
  }
  cstr_free(&from);
  cstr_free(&to);
  return result;
}

/* ------------------------------------------------------------------------- */
/* Module                                                                     */

static bool set_int_constant(napi_env env, napi_value exports, const char *name, int32_t value) {
  napi_value v;
  return napi_create_int32(env, value, &v) == napi_ok &&
         napi_set_named_property(env, exports, name, v) == napi_ok;
}

/* ------------------------------------------------------------------------- */
/* peercred(fd) -> { pid, uid, gid }                                          */

/* SO_PEERCRED: who is at the other end of a connected unix socket, as the kernel
 * recorded it at connect(2). The service uses it to refuse other users' requests. */
static napi_value Peercred(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, NULL)) return NULL;

  double fd;
  if (!get_integer(env, argv[0], "fd", 0, INT_MAX, &fd)) return NULL;

  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt((int)fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return throw_errno(env, errno, "getsockopt", NULL, 0, NULL, 0);
  }
  napi_value result, pid, uid, gid;
  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, napi_create_int64(env, (int64_t)cred.pid, &pid));
  NAPI_CALL(env, napi_create_int64(env, (int64_t)cred.uid, &uid));
  NAPI_CALL(env, napi_create_int64(env, (int64_t)cred.gid, &gid));
  NAPI_CALL(env, napi_set_named_property(env, result, "pid", pid));
  NAPI_CALL(env, napi_set_named_property(env, result, "uid", uid));
  NAPI_CALL(env, napi_set_named_property(env, result, "gid", gid));
  return result;
}

NAPI_MODULE_INIT() {
  static const struct {
    const char *name;
    napi_callback cb;
  } fns[] = {
      {"flock", Flock},
      {"syncfs", Syncfs},
      {"mknod", Mknod},
      {"makedev", Makedev},
      {"lgetxattr", Lgetxattr},
      {"lsetxattr", Lsetxattr},
      {"llistxattr", Llistxattr},
      {"lremovexattr", Lremovexattr},
      {"renameat2", Renameat2},
      {"peercred", Peercred},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value fn; /* named functions, so stack traces say "at flock" */
    NAPI_CALL(env, napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].cb, NULL, &fn));
    NAPI_CALL(env, napi_set_named_property(env, exports, fns[i].name, fn));
  }
  if (!set_int_constant(env, exports, "RENAME_NOREPLACE", RENAME_NOREPLACE) ||
      !set_int_constant(env, exports, "RENAME_EXCHANGE", RENAME_EXCHANGE) ||
      !set_int_constant(env, exports, "RENAME_WHITEOUT", RENAME_WHITEOUT) ||
      !set_int_constant(env, exports, "XATTR_CREATE", XATTR_CREATE) ||
      !set_int_constant(env, exports, "XATTR_REPLACE", XATTR_REPLACE)) {
    throw_napi_failure(env, "constants");
    return NULL;
  }
  return exports;
}
