"""Test fixture for the upload stage's S3 tests, run with the venv's python (Ops/setup.sh installs boto3 and moto
there). It talks to a moto server that the test started on loopback; boto3 is an independent S3 client, so what it
reads back is what the server really stored.

  s3_fixture.py setup ENDPOINT BUCKET
      creates an IAM user allowed s3:*, its access key, and BUCKET, then turns moto's authentication on (every
      later request must be signed with that key); prints {"id": ..., "secret": ...}
  s3_fixture.py list ENDPOINT BUCKET PREFIX ID SECRET
      prints [{"key", "size", "sha256", "content_type"}] for every object under PREFIX, read back with GetObject
"""
import hashlib
import json
import sys
import urllib.request

import boto3


def client(service, endpoint, key_id="test", secret="test"):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=key_id, aws_secret_access_key=secret)


def setup(endpoint, bucket):
    iam = client("iam", endpoint)
    iam.create_user(UserName="hume-upload")
    iam.put_user_policy(UserName="hume-upload", PolicyName="s3", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="hume-upload")["AccessKey"]
    client("s3", endpoint).create_bucket(Bucket=bucket)
    # From now on moto checks every request's signature against the IAM keys.
    request = urllib.request.Request(endpoint + "/moto-api/reset-auth", data=b"0", method="POST",
                                     headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request, timeout=10).read()
    print(json.dumps({"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}))


def list_objects(endpoint, bucket, prefix, key_id, secret):
    s3 = client("s3", endpoint, key_id, secret)
    out = []
    for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        obj = s3.get_object(Bucket=bucket, Key=item["Key"])
        body = obj["Body"].read()
        out.append({"key": item["Key"], "size": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                    "content_type": obj.get("ContentType", "")})
    print(json.dumps(out))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "setup":
        setup(*args)
    elif command == "list":
        list_objects(*args)
    else:
        sys.exit("unknown command " + command)
