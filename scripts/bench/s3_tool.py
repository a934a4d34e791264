#!/usr/bin/env python3
"""The reference S3 client of scripts/bench/bucket-upload (boto3, from the test venv).

usage:
  s3_tool.py upload ENDPOINT BUCKET KEY FILE [--concurrency N]
      boto3's managed upload_file (multipart, 8 MiB parts, N threads; boto3's
      default is 10); prints "upload_seconds S" to standard error: the
      seconds of the upload_file call (interpreter start-up and imports excluded)
  s3_tool.py clear ENDPOINT BUCKET
      deletes every object and aborts every multipart upload (moto keeps
      objects in memory); prints the bytes that were stored

Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (region us-east-1).
"""
import argparse
import os
import sys
import time

import boto3
from boto3.s3.transfer import TransferConfig

MIB = 1 << 20


def client(endpoint):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"])


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("upload")
    u.add_argument("endpoint")
    u.add_argument("bucket")
    u.add_argument("key")
    u.add_argument("file")
    u.add_argument("--concurrency", type=int, default=10)
    c = sub.add_parser("clear")
    c.add_argument("endpoint")
    c.add_argument("bucket")
    a = p.parse_args()
    s3 = client(a.endpoint)
    if a.cmd == "upload":
        cfg = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB,
                             max_concurrency=a.concurrency, use_threads=a.concurrency > 1)
        t0 = time.monotonic()
        s3.upload_file(a.file, a.bucket, a.key, Config=cfg)
        print("upload_seconds %.3f" % (time.monotonic() - t0), file=sys.stderr)
        return 0
    total = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=a.bucket):
        for o in page.get("Contents", []):
            total += o["Size"]
            s3.delete_object(Bucket=a.bucket, Key=o["Key"])
    for up in s3.list_multipart_uploads(Bucket=a.bucket).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=a.bucket, Key=up["Key"], UploadId=up["UploadId"])
    print(total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
