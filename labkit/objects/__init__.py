"""Object storage for the file lab, one job per module (import them directly):

- `names`      safe object names and per-user keys (pure)
- `transforms` Pillow transformations under explicit limits (pure, CPU-bound)
- `endpoint`   where the S3 endpoint is and its keys: settings, else the stack's store
- `store`      `ObjectStore`, one bucket through the minio SDK: presign, read, write
- `transfer`   plain HTTP to presigned URLs, with a progress bar
- `sample`     the course's sample image, drawn by code
- `errors`     what can go wrong, each with the code of its error reply

Nothing is imported here, so the stack (which needs `endpoint` only) starts
without loading the S3 SDK or Pillow.
"""
