#!/usr/bin/env python3
"""Prepare a moto S3 server for the bucket tests.

usage: s3_setup.py ENDPOINT BUCKET...

moto is started with INITIAL_NO_AUTH_ACTION_COUNT so that it checks
credentials after its first few requests. Those requests (made here) create
an IAM user with an access key and an S3 policy, then the buckets; everything
after that needs the printed credentials. Prints "ACCESS_KEY SECRET_KEY".
"""
import json
import sys

import boto3


def main() -> int:
    endpoint, buckets = sys.argv[1], sys.argv[2:]
    kw = dict(endpoint_url=endpoint, region_name="us-east-1",
              aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
    iam = boto3.client("iam", **kw)
    iam.create_user(UserName="helm-bulk")
    key = iam.create_access_key(UserName="helm-bulk")["AccessKey"]
    iam.put_user_policy(UserName="helm-bulk", PolicyName="s3", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }))
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id=key["AccessKeyId"],
                      aws_secret_access_key=key["SecretAccessKey"])
    for b in buckets:
        s3.create_bucket(Bucket=b)
    print(key["AccessKeyId"], key["SecretAccessKey"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
