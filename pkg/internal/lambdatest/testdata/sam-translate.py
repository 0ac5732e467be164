"""Translates a SAM template to the CloudFormation JSON that
CloudFormation's AWS::Serverless transform makes of it, with samtranslator
(the library of the transform, installed with cfn-lint), for a fake
account 123456789012 in us-east-1 and local code replaced by an S3
location, as `sam package` replaces it.

usage: python3 sam-translate.py template.yaml out.json
"""

import json
import os
import sys

os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ.setdefault("AWS_ACCESS_KEY_ID", "AKIDTEST")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "secret-test")

from samtranslator.model.exceptions import InvalidDocumentException  # noqa: E402
from samtranslator.parser.parser import Parser  # noqa: E402
from samtranslator.translator.translator import Translator  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402

PACKAGED_CODE = "s3://mobius-artifacts-123456789012/mobius/bootstrap.zip"


def main(src, dst):
    with open(src) as f:
        template = yaml_parse(f.read())
    fn_globals = template.get("Globals", {}).get("Function", {})
    if "CodeUri" in fn_globals:
        fn_globals["CodeUri"] = PACKAGED_CODE
    for res in template.get("Resources", {}).values():
        if res.get("Type") == "AWS::Serverless::Function" and "CodeUri" in res.get("Properties", {}):
            res["Properties"]["CodeUri"] = PACKAGED_CODE
    pseudo = {
        "AWS::AccountId": "123456789012",
        "AWS::Region": "us-east-1",
        "AWS::Partition": "aws",
        "AWS::StackName": "mobius-secrets-lint",
        "AWS::StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/mobius-secrets-lint/00000000-0000-0000-0000-000000000000",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::NotificationARNs": [],
    }
    try:
        out = Translator(managed_policy_map={}, sam_parser=Parser()).translate(
            sam_template=template, parameter_values=pseudo
        )
    except InvalidDocumentException as e:
        for cause in e.causes:
            print("sam-translate: " + cause.message, file=sys.stderr)
        return 1
    with open(dst, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
