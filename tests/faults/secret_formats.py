"""Credential formats planted by the secret fault suite: one row per format, a realistic value.

Each row is the line a host could hold (a log line, an environment assignment, a header) and the
secret parts of it that must never reach any output. The values are made up in the real formats
(lengths, alphabets and prefixes of AWS, GitHub, GitLab, Slack... credentials); none is live.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

PEM_BODY = (
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK",
    "LxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW/VDL5AaWTg0nLVkjRo",
)
PEM_RSA = (
    "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(PEM_BODY) + "\n-----END RSA PRIVATE KEY-----"
)
OPENSSH_BODY = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"
PEM_OPENSSH = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n" + OPENSSH_BODY + "\n-----END OPENSSH PRIVATE KEY-----"
)


@dataclass(frozen=True)
class Planted:
    """One credential format: its id, the line that carries it, the parts that are secret."""

    id: str
    line: str
    secrets: Tuple[str, ...]
    multiline: bool = False  # True: the line holds real line breaks (journal, JSON, files only)


ROWS: Tuple[Planted, ...] = (
    Planted(
        "aws-secret-access-key-env",
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLE01",
        ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLE01",),
    ),
    Planted(
        "secret-key-lower",
        "secret_key=Zq3t6w9zCzF6JaNdRgUkXp2s5v8yBbEeHmQpThWm",
        ("Zq3t6w9zCzF6JaNdRgUkXp2s5v8yBbEeHmQpThWm",),
    ),
    Planted(
        "aws-secret-key-env",
        "AWS_SECRET_KEY=q8Ut+Zk2Ld9Rf4Np6Hs1Wy3Xa5Cb7Ev0Gj2Mk4Pn",
        ("q8Ut+Zk2Ld9Rf4Np6Hs1Wy3Xa5Cb7Ev0Gj2Mk4Pn",),
    ),
    Planted(
        "bare-40-char-secret",
        "loaded credentials 9dRk2LpQ7vXw3ZbN8mTy5HcJ4sGf6AeU1oWi0Kq/ from cache",
        ("9dRk2LpQ7vXw3ZbN8mTy5HcJ4sGf6AeU1oWi0Kq/",),
    ),
    Planted(
        "aws-secret-in-ini",
        "aws_secret_access_key = Hk7Lm2Nq9Rs4Tv6Wx8Yz1Ab3Cd5Ef7Gh9Ij2Kl4M",
        ("Hk7Lm2Nq9Rs4Tv6Wx8Yz1Ab3Cd5Ef7Gh9Ij2Kl4M",),
    ),
    Planted(
        "imds-credentials-json",
        '{"Code" : "Success", "AccessKeyId" : "ASIAZXCVBNMQWERTYUI1", "SecretAccessKey" : '
        '"Lp0Ok9Ij8Uh7Yg6Tf5Rd4Es3Wa2Qz1Xs0Cd9Vf8B", "Token" : "IQoJb3JpZ2luX2VjEHsaCXVzLWVhc3QtMSJGMEQCIFbYdmZ0aGVyZXNlY3JldHRva2VuaGVyZQ=="}',
        (
            "ASIAZXCVBNMQWERTYUI1",
            "Lp0Ok9Ij8Uh7Yg6Tf5Rd4Es3Wa2Qz1Xs0Cd9Vf8B",
            "IQoJb3JpZ2luX2VjEHsaCXVzLWVhc3QtMSJGMEQCIFbYdmZ0aGVyZXNlY3JldHRva2VuaGVyZQ",
        ),
    ),
    Planted(
        "escaped-json-in-json",
        r'{"msg": "{\"SecretAccessKey\": \"Mn8Bv7Cx6Za5Sd4Fg3Hj2Kl1Qw0Er9Ty8Ui7Op6A\"}"}',
        ("Mn8Bv7Cx6Za5Sd4Fg3Hj2Kl1Qw0Er9Ty8Ui7Op6A",),
    ),
    Planted(
        "x-amz-security-token-header",
        "X-Amz-Security-Token: FwoGZXIvYXdzEBYaDHVzZWFzdDFzZWNyZXQiLXNlc3Npb24tdG9rZW4tcGxhbnRlZA",
        ("FwoGZXIvYXdzEBYaDHVzZWFzdDFzZWNyZXQiLXNlc3Npb24tdG9rZW4tcGxhbnRlZA",),
    ),
    Planted(
        "aws-security-token-env",
        "AWS_SECURITY_TOKEN=AgoJb3JpZ2luX2VjEOr//////////wEaCXNlY3VyaXR5dG9rZW4",
        ("AgoJb3JpZ2luX2VjEOr//////////wEaCXNlY3VyaXR5dG9rZW4",),
    ),
    Planted(
        "aws-session-token-ini",
        "aws_session_token = FQoGZXIvYXdzEPr//////////wEaDM9sessiontokenPLANTED42",
        ("FQoGZXIvYXdzEPr//////////wEaDM9sessiontokenPLANTED42",),
    ),
    Planted(
        "bare-session-token-fwog",
        "refreshed FwoGZXIvYXdzEKb//////////wEaDBareSessionToken7Planted9Xyz credentials",
        ("FwoGZXIvYXdzEKb//////////wEaDBareSessionToken7Planted9Xyz",),
    ),
    Planted(
        "bare-session-token-iqoj",
        "token IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMUIQoJbarePlanted2",
        ("IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMUIQoJbarePlanted2",),
    ),
    Planted(
        "authorization-bearer",
        "Authorization: Bearer s3cr3tB3arerT0kenValue.Planted-123",
        ("s3cr3tB3arerT0kenValue.Planted-123",),
    ),
    Planted(
        "authorization-basic",
        "Authorization: Basic YWxpY2U6QmFzaWNQbGFudGVkUHc=",
        ("YWxpY2U6QmFzaWNQbGFudGVkUHc",),
    ),
    Planted(
        "proxy-authorization",
        "Proxy-Authorization: Basic Ym9iOlByb3h5UGxhbnRlZFB3MQ==",
        ("Ym9iOlByb3h5UGxhbnRlZFB3MQ",),
    ),
    Planted(
        "authorization-digest",
        'Authorization: Digest username="carol", realm="proxy", response="6629fae49393a05397450978507c4ef1"',
        ("6629fae49393a05397450978507c4ef1",),
    ),
    Planted(
        "sigv4-authorization",
        "Authorization: AWS4-HMAC-SHA256 Credential=AKIAQWERTYUIOPASDFG2/20261130/us-east-1/guardduty/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024",
        (
            "AKIAQWERTYUIOPASDFG2",
            "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024",
        ),
    ),
    Planted(
        "sigv4-signature-param",
        "GET /?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404&X-Amz-Date=20261130T000000Z",
        ("aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",),
    ),
    Planted(
        "proxy-url-credentials",
        "https_proxy=http://alice:Sup3rS3cretPlanted@proxy.corp:3128",
        ("Sup3rS3cretPlanted",),
    ),
    Planted(
        "proxy-url-schemeless",
        "HTTPS_PROXY=dave:N0SchemePlanted9@proxy.corp:3128",
        ("N0SchemePlanted9",),
    ),
    Planted(
        "password-with-at-and-slash",
        "http_proxy=http://erin:p@ss/W0rd!Plant@proxy.corp:3128",
        ("p@ss/W0rd!Plant", "ss/W0rd!Plant"),
    ),
    Planted("proxy-password-yum", "proxy_password=YumPr0xyPlanted#77", ("YumPr0xyPlanted#77",)),
    Planted(
        "npm-auth-token",
        "//registry.npmjs.org/:_authToken=npm_NpmPlantedTokenAbcdefghijklmnopqrstuv12",
        ("npm_NpmPlantedTokenAbcdefghijklmnopqrstuv12", "NpmPlantedTokenAbcdefghijklmnopqrstuv12"),
    ),
    Planted(
        "akia-with-suffix",
        "rotated AKIAIOSFODNN7PLANTED_old to a new key",
        ("AKIAIOSFODNN7PLANTED",),
    ),
    Planted("akia-bare", "using access key AKIAJ2PLANTEDKEY7XYZ", ("AKIAJ2PLANTEDKEY7XYZ",)),
    Planted(
        "url-encoded-credentials",
        "proxy=http%3A%2F%2Ffrank%3AEnc0dedPlanted%40proxy.corp%3A3128",
        ("Enc0dedPlanted",),
    ),
    Planted(
        "url-encoded-key-value",
        "body=user%3Dbob%26password%3DUrlEncPlanted55",
        ("UrlEncPlanted55",),
    ),
    Planted("pem-rsa-escaped", "key=" + PEM_RSA.replace("\n", "\\n"), PEM_BODY),
    Planted("pem-rsa-multiline", PEM_RSA, PEM_BODY, multiline=True),
    Planted("pem-openssh-escaped", PEM_OPENSSH.replace("\n", "\\n"), (OPENSSH_BODY,)),
    Planted(
        "cli-password-flag",
        "exec /usr/bin/helper --password CliFlagPlanted42 --user bob",
        ("CliFlagPlanted42",),
    ),
    Planted("cli-token-flag", "exec helper --api-token=CliTokPlanted7788", ("CliTokPlanted7788",)),
    Planted(
        "github-classic-token",
        "GITHUB=ghp_R8sPlantedGithubTokenAbcdefghijklmn0123",
        ("R8sPlantedGithubTokenAbcdefghijklmn0123",),
    ),
    Planted(
        "github-fine-grained",
        "token github_pat_11ABCDEFG0PlantedFineGrained_abcdefghijklmnopqrstuvwxyz0123",
        ("11ABCDEFG0PlantedFineGrained_abcdefghijklmnopqrstuvwxyz0123",),
    ),
    Planted("gitlab-token", "CI uses glpat-GlPlantedTok3nXyZ12345", ("GlPlantedTok3nXyZ12345",)),
    Planted(
        "slack-bot-token",
        "slack xoxb-123456789012-1234567890123-SlackBotPlantedAbc",
        ("123456789012-1234567890123-SlackBotPlantedAbc",),
    ),
    Planted(
        "slack-user-token",
        "slack xoxp-223456789012-2234567890123-SlackUserPlantedXyz",
        ("223456789012-2234567890123-SlackUserPlantedXyz",),
    ),
    Planted(
        "slack-webhook",
        "posting to https://hooks.slack.com/services/T00PLANT/B00PLANT/XxWebhookPlantedSecret99",
        ("XxWebhookPlantedSecret99",),
    ),
    Planted(
        "openai-style-key",
        "OPENAI sk-proj-OpenAiPlantedKey0123456789abcdefABCDEF",
        ("OpenAiPlantedKey0123456789abcdefABCDEF",),
    ),
    Planted(
        "stripe-live-key",
        "charge with sk_live_51StripePlanted0123456789abcd",
        ("51StripePlanted0123456789abcd",),
    ),
    Planted(
        "google-api-key",
        "maps AIzaSyPlantedGoogleKey0123456789abcdefg",
        ("SyPlantedGoogleKey0123456789abcdefg",),
    ),
    Planted(
        "vault-token",
        "VAULT_TOKEN=hvs.CAESIPlantedVaultTokenAbcdefghijkl",
        ("CAESIPlantedVaultTokenAbcdefghijkl",),
    ),
    Planted(
        "jwt-bare",
        "session eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJwbGFudGVkIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        ("eyJzdWIiOiJwbGFudGVkIn0", "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"),
    ),
    Planted(
        "imds-token-header",
        "X-aws-ec2-metadata-token: AQAEAImdsPlantedTokenHeader0123456789abcdefghij==",
        ("AQAEAImdsPlantedTokenHeader0123456789abcdefghij",),
    ),
    Planted(
        "imds-token-bare",
        "got AQAEABareImdsPlantedToken0123456789abcdefghijklmn== from PUT",
        ("AQAEABareImdsPlantedToken0123456789abcdefghijklmn",),
    ),
    Planted("password-equals", "password=PwEqPlanted!2026", ("PwEqPlanted!2026",)),
    Planted("passwd-colon", "passwd: PasswdColonPlanted", ("PasswdColonPlanted",)),
    Planted("pwd-equals", "db pwd=PwdPlanted314 host=db", ("PwdPlanted314",)),
    Planted(
        "db-password-env",
        "DB_PASSWORD='Quoted Pw Planted 7'",
        ("Quoted Pw Planted 7", "Pw Planted 7"),
    ),
    Planted("api-key-equals", "api_key=ApiKeyPlanted0123456789", ("ApiKeyPlanted0123456789",)),
    Planted(
        "x-api-key-header", "x-api-key: XApiKeyPlanted0987654321", ("XApiKeyPlanted0987654321",)
    ),
    Planted(
        "client-secret",
        "client_secret=ClientSecretPlanted~abc.def",
        ("ClientSecretPlanted~abc.def",),
    ),
    Planted(
        "private-key-field",
        '"private_key": "PrivateKeyFieldPlanted123"',
        ("PrivateKeyFieldPlanted123",),
    ),
    Planted(
        "cookie-header", "Cookie: session=CookieSessPlanted42; theme=dark", ("CookieSessPlanted42",)
    ),
    Planted(
        "set-cookie-header",
        "Set-Cookie: auth=SetCookiePlanted77; Path=/; HttpOnly",
        ("SetCookiePlanted77",),
    ),
    Planted(
        "netrc-password",
        "machine proxy.corp login gina password NetrcPlanted99",
        ("NetrcPlanted99",),
    ),
    Planted(
        "docker-auth",
        '{"auths": {"https://index.docker.io/v1/": {"auth": "aGFuazpEb2NrZXJQbGFudGVkUHc="}}}',
        ("aGFuazpEb2NrZXJQbGFudGVkUHc",),
    ),
    Planted(
        "ssm-activation-code", "ActivationCode=SsmActPlantedCode1234", ("SsmActPlantedCode1234",)
    ),
    Planted(
        "quoted-env-with-spaces",
        '"PROXY_PASSWORD=spaced pw planted"',
        ("spaced pw planted", "pw planted"),
    ),
    Planted(
        "go-struct-credentials",
        "creds &{AccessKeyID:ASIAPLANTEDGOSTRUCT1 SecretAccessKey:GoStructSecretPlanted SessionToken:GoSessTokPlanted}",
        ("ASIAPLANTEDGOSTRUCT1", "GoStructSecretPlanted", "GoSessTokPlanted"),
    ),
)

SOURCES = ("agent-log", "unit-environment", "environment-file", "journal", "ssm-log",
           "ssm-state", "process-environ")  # fmt: skip
