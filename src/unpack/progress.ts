/**
 * Pull progress: what a CLI shows as bars and what kubelet-like callers watch to know a
 * long pull is alive. Events keep coming during a long unpack (bytes applied).
 */

export type LayerStatus =
  | 'waiting'
  | 'exists'
  | 'downloading'
  | 'extracting'
  | 'verifying'
  | 'committed'
  | 'done';

export type PullProgressEvent =
  | { type: 'resolved'; ref: string; digest: string; mediaType: string }
  | { type: 'manifest'; digest: string; platform?: string; layers: number }
  | {
      type: 'layer';
      digest: string;
      /** Index in the manifest. */
      index: number;
      status: LayerStatus;
      /** Compressed bytes in the content store so far. */
      fetched: number;
      total: number;
      /** Uncompressed bytes written into the snapshot so far. */
      applied?: number;
    }
  | { type: 'committed'; chainID: string; digest: string; index: number }
  | {
      type: 'done';
      name: string;
      digest: string;
      durationMs: number;
      bytesFetched: number;
      bytesApplied: number;
      layers: number;
      layersApplied: number;
    };

export type ProgressCallback = (event: PullProgressEvent) => void;
