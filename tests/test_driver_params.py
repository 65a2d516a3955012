"""registry:2's s3 and azure parameters: what each means here, and the clear refusals."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mirror.store.drivers import create_driver
from mirror.store.drivers.azureparams import azure_settings
from mirror.store.drivers.objsettings import MIB
from mirror.store.drivers.s3params import S3Settings, s3_settings

S3 = {"region": "eu-west-1", "bucket": "reg"}
AZURE = {"accountname": "acct", "container": "reg", "accountkey": "a2V5"}


def s3(**extra: object) -> S3Settings:
    return s3_settings({**S3, **extra})


def test_s3_defaults_follow_registry2() -> None:
    settings = s3()
    assert (settings.endpoint, settings.virtual_hosted, settings.allow_http) == (None, True, False)
    assert (settings.access_key, settings.secret_key) == (None, None)  # the AWS chain
    assert (settings.part_size, settings.root, settings.storage_class) == (10 * MIB, "", "STANDARD")
    assert settings.encryption is None


def test_s3_endpoints() -> None:
    moto = s3(regionendpoint="http://127.0.0.1:9000", forcepathstyle=True)
    assert (moto.endpoint, moto.virtual_hosted, moto.allow_http) == (
        "http://127.0.0.1:9000",
        False,
        True,
    )
    # Without a scheme, `secure` decides; virtual-hosted style puts the bucket in the host.
    assert s3(regionendpoint="minio:9000", secure="false").endpoint == "http://reg.minio:9000"
    assert s3(regionendpoint="minio:9000").endpoint == "https://reg.minio:9000"
    assert s3(secure=False).endpoint == "http://reg.s3.eu-west-1.amazonaws.com"
    assert s3_settings({"bucket": "b", "regionendpoint": "http://h"}).region == "us-east-1"
    for bad in ("ftp://h", "http://h/path", "http://h?x=1"):
        with pytest.raises(ValueError, match="'regionendpoint'"):
            s3(regionendpoint=bad)


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"bucket": ""}, "'bucket' is required"),
        ({"region": None}, "'region' is required"),
        ({"accesskey": "AK"}, "'secretkey' is required"),
        ({"secretkey": "SK"}, "'accesskey' is required"),
        ({"keyid": "k"}, "'keyid' needs encrypt: true"),
        ({"v4auth": False}, "'v4auth' false is not supported"),
        ({"objectacl": "public-read"}, "'objectacl' is not supported"),
        ({"multipartcopychunksize": 33554432}, "'multipartcopychunksize' is not supported"),
        ({"multipartcopymaxconcurrency": 100}, "no multipart copy"),
        ({"multipartcopythresholdsize": 1}, "no multipart copy"),
        ({"storageclass": "REDUCED_REDUNDANCY"}, "must be STANDARD or NONE"),
        ({"chunksize": 1024}, "'chunksize' must be between 5242880"),
        ({"chunksize": "ten"}, "'chunksize' must be an integer"),
        ({"secure": "maybe"}, "'secure' must be true or false"),
        ({"rootdirectory": "a//b"}, "'rootdirectory' must be slash-separated"),
        ({"rootdirectory": "a/../b"}, "'rootdirectory'"),
        ({"redirectendpoint": "http://x"}, "does not take parameter.*redirectendpoint"),
    ],
)
def test_s3_refusals(extra: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        s3_settings({k: v for k, v in {**S3, **extra}.items() if v is not None})


def test_s3_values_from_environment_strings() -> None:
    settings = s3(
        encrypt="true",
        keyid="arn:key",
        chunksize="5242880",
        rootdirectory="/a/b/",
        storageclass="none",
        objectacl="private",
        v4auth="true",
        accesskey="AK",
        secretkey="SK",
    )
    assert (settings.encryption, settings.kms_key_id) == ("aws:kms", "arn:key")
    assert (settings.part_size, settings.root, settings.storage_class) == (5 * MIB, "a/b", None)
    assert s3(encrypt=True).encryption == "AES256"
    assert s3(storageclass="standard").storage_class == "STANDARD"
    assert "SK" not in repr(settings)


def test_azure_credentials() -> None:
    legacy = azure_settings(AZURE)
    assert (legacy.credentials, legacy.account_key) == ("shared_key", "a2V5")
    assert legacy.service_url == "https://acct.blob.core.windows.net"
    assert "a2V5" not in repr(legacy)
    token = azure_settings(
        {
            "accountname": "acct",
            "container": "reg",
            "credentials": {
                "type": "client_secret",
                "clientid": "c",
                "tenantid": "t",
                "secret": "s",
            },
        }
    )
    assert (token.client_id, token.tenant_id, token.client_secret) == ("c", "t", "s")
    default = azure_settings(
        {"accountname": "acct", "container": "reg", "credentials": {"type": "default_credentials"}}
    )
    assert default.account_key is None
    china = azure_settings({**AZURE, "realm": "core.chinacloudapi.cn"})
    assert china.service_url == "https://acct.blob.core.chinacloudapi.cn"


def test_azure_retries_and_root() -> None:
    settings = azure_settings(
        {**AZURE, "max_retries": "-1", "retry_delay": "250ms", "rootdirectory": "/x/"}
    )
    assert (settings.max_retries, settings.retry_delay, settings.root) == (0, 0.25, "x")
    defaults = azure_settings(AZURE)
    assert (defaults.max_retries, defaults.retry_delay) == (5, 0.1)
    emulator = azure_settings({**AZURE, "serviceurl": "http://127.0.0.1:10000/devstoreaccount1/"})
    assert (emulator.service_url, emulator.allow_http) == (
        "http://127.0.0.1:10000/devstoreaccount1",
        True,
    )


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"container": "reg", "accountkey": "k"}, "'accountname' is required"),
        ({"accountname": "a", "container": "reg"}, "'credentials' is required"),
        ({**AZURE, "credentials": {"type": "sas"}}, "type must be one of"),
        ({**AZURE, "credentials": {"type": "default_credentials"}}, "only used with shared_key"),
        (
            {"accountname": "a", "container": "reg", "credentials": {"type": "shared_key"}},
            "'accountkey' is required",
        ),
        (
            {"accountname": "a", "container": "r", "credentials": {"type": "client_secret"}},
            "'credentials.clientid' is required",
        ),
        ({**AZURE, "credentials": {"type": "shared_key", "tenantid": "t"}}, "only for client"),
        ({**AZURE, "credentials": {"type": "shared_key", "extra": 1}}, "does not take"),
        ({**AZURE, "realm": "r", "serviceurl": "https://x"}, "'realm' only builds"),
        ({**AZURE, "serviceurl": "x:y"}, "'serviceurl' must be an http"),
        ({**AZURE, "max_retries": -2}, "'max_retries' must be between -1"),
        ({**AZURE, "retry_delay": "soon"}, "'retry_delay' must be a duration"),
        ({**AZURE, "connectionstring": "x"}, "does not take parameter"),
    ],
)
def test_azure_refusals(params: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        azure_settings(params)


def test_factory_names_the_problem() -> None:
    with pytest.raises(ValueError, match="'gcs' is not shipped yet"):
        create_driver("gcs", {"bucket": "b"})
    with pytest.raises(ValueError, match=r"'s3' needs 'bucket' \(required\)"):
        create_driver("s3", {"region": "r"})
    with pytest.raises(ValueError, match=r"'azure' needs 'container' \(required\)"):
        create_driver("azure", {"accountname": "a"})
    # The checks between keys run on parameters from code too.
    with pytest.raises(ValueError, match=r"'s3' needs 'keyid' \(needs encrypt: true"):
        create_driver("s3", {"bucket": "b", "region": "r", "keyid": "k"})


def test_parameter_modules_need_no_sdk() -> None:
    code = (
        "import sys\n"
        "import mirror.store.drivers.s3params, mirror.store.drivers.azureparams\n"
        "import mirror.store.drivers\n"
        "assert 'obstore' not in sys.modules, 'obstore was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
