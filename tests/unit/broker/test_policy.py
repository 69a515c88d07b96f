"""The broker's policy: every rule and every deny reason as a table, against real CSRs; policy
files refused with source, line and field; attestation settings."""

from __future__ import annotations

import datetime
import textwrap

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from cred_helper.broker.facts import csr_facts
from cred_helper.broker.policy import Policy, PolicyError, load_policy, load_policy_file
from cred_helper.broker.verdict import APPROVE, DENY, MANUAL, NO_PROOF, Attestation
from cred_helper.broker.yubico import YUBICO_PIV_ROOTS

from .build import csr_object, request_pem

POLICY = textwrap.dedent("""\
    default: manual
    attestation:
      max-age: 2m
      registry:
        - {user: alice, key-sha256: "%s"}
        - {user: dave, serial: 1234567}
    rules:
      - name: blocked
        match: {users: [mallory]}
        action: deny
      - name: oncall
        match: {groups: [oncall]}
        action: approve
        subject-groups: ["*"]
        max-expiration: 30m
        attestation: required
        pin-policies: [once, always]
        touch-policies: [always, cached]
      - name: devs
        match: {groups: [dev]}
        action: approve
        subject-groups: [dev]
        max-expiration: 1h
        attestation: registry-key
      - name: ci
        match: {users: [ci-bot]}
        action: approve
        max-expiration: 10m
        key-types: [p384]
        attestation: none
      - name: break-glass
        match: {groups: [sre]}
        action: manual
        subject-groups: [system:masters, sre]
        require-reason: true
        max-expiration: 1h
    """) % ("ab" * 32)

ATTESTED = Attestation("attested", True, "chains to the test root", user="alice",
                       serial=99, pin_policy="once", touch_policy="always")
FORGED = Attestation("attested", False, "the chain does not reach a configured root")
REGISTERED_DAVE = Attestation("registry-key", True, "registered key", user="dave")


def _with(att: Attestation, **changes) -> Attestation:
    values = {**att.__dict__, **changes}
    return Attestation(**values)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(POLICY, "policy.yaml")


def facts(kind="ed25519", cn="alice", orgs=(), extra=(), sans=(), proof=None, **obj):
    """The facts of a real CSR: the request's own fields first, then the object's."""
    username = obj.get("username", "alice")
    cn = username if cn == "alice" and username != "alice" else cn
    pem = request_pem(kind, cn=cn, orgs=orgs, extra=extra, sans=sans, proof=proof)
    return csr_facts(csr_object(pem, **obj))


ALICE = {"username": "alice", "groups": ("oncall", "system:authenticated")}
DAVE = {"username": "dave", "groups": ("dev", "qa", "system:authenticated")}
SRE = {"username": "root-sre", "groups": ("sre", "system:masters", "system:authenticated")}
CI = {"username": "ci-bot", "groups": ("system:authenticated",)}
OU = x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "ou")

# (id, facts arguments, attestation, action, rule, a fragment of the reason)
TABLE = [
    ("oncall-approve", {**ALICE}, ATTESTED, APPROVE, "oncall", "every check passed"),
    ("oncall-own-group", {**ALICE, "orgs": ("oncall",)}, ATTESTED, APPROVE, "oncall", ""),
    ("oncall-p256", {**ALICE, "kind": "p256"}, ATTESTED, APPROVE, "oncall", ""),
    ("oncall-rsa2048", {**ALICE, "kind": "rsa2048"}, ATTESTED, APPROVE, "oncall", ""),
    ("oncall-both-usages", {**ALICE, "usages": ("digital signature", "client auth")},
     ATTESTED, APPROVE, "oncall", ""),
    ("oncall-expiration-at-max", {**ALICE, "expiration": 1800}, ATTESTED, APPROVE, "oncall", ""),
    ("rsa-too-small", {**ALICE, "kind": "rsa1024"}, ATTESTED, DENY, "oncall",
     "rule oncall: RSA key of 1024 bits is under 2048"),
    ("key-type-not-allowed", {**ALICE, "kind": "p384"}, ATTESTED, DENY, "oncall",
     "rule oncall: key type p384 is not allowed (ed25519, p256, rsa)"),
    ("key-type-other", {**ALICE, "kind": "p521"}, ATTESTED, DENY, "oncall",
     "key type other is not allowed"),
    ("cn-not-requester", {**ALICE, "cn": "bob"}, ATTESTED, DENY, "oncall",
     "rule oncall: CN 'bob' is not the requester 'alice'"),
    ("cn-missing", {**ALICE, "cn": None}, ATTESTED, DENY, "oncall", "CN '' is not the requester"),
    ("o-not-held", {**ALICE, "orgs": ("sre",)}, ATTESTED, DENY, "oncall",
     "O 'sre' is a group the requester 'alice' does not hold"),
    ("o-system-not-named", {**ALICE, "groups": ("oncall", "system:masters"),
                            "orgs": ("system:masters",)}, ATTESTED, DENY, "oncall",
     "O 'system:masters' is a system: group, and the rule does not name it"),
    ("o-not-allowed", {**DAVE, "orgs": ("dev", "qa")}, REGISTERED_DAVE, DENY, "devs",
     "rule devs: O 'qa' is not among the rule's subject-groups (dev)"),
    ("extra-subject", {**ALICE, "extra": (OU,)}, ATTESTED, DENY, "oncall",
     "holds more than one CN and O's"),
    ("alt-names", {**ALICE, "sans": ("kubernetes.default",)}, ATTESTED, DENY, "oncall",
     "asks for alternative names kubernetes.default"),
    ("usage-missing-client-auth", {**ALICE, "usages": ("digital signature",)}, ATTESTED, DENY,
     "oncall", "usages (digital signature) lack 'client auth'"),
    ("usage-none", {**ALICE, "usages": ()}, ATTESTED, DENY, "oncall", "usages (none) lack"),
    ("usage-extra", {**ALICE, "usages": ("client auth", "server auth")}, ATTESTED, DENY,
     "oncall", "usage 'server auth' is not allowed"),
    ("expiration-too-long", {**ALICE, "expiration": 3600}, ATTESTED, DENY, "oncall",
     "rule oncall: expirationSeconds 3600 exceeds 30m"),
    ("expiration-missing", {**ALICE, "expiration": None}, ATTESTED, DENY, "oncall",
     "expirationSeconds is not set, and the rule's maximum is 30m"),
    ("attestation-missing", {**ALICE}, NO_PROOF, DENY, "oncall",
     "the rule wants a hardware attestation; got none"),
    ("attestation-weaker-mode", {**ALICE}, _with(REGISTERED_DAVE, user="alice"), DENY, "oncall",
     "wants a hardware attestation; got registry-key"),
    ("attested-key-of-another", {**ALICE}, _with(ATTESTED, user="bob"), DENY, "oncall",
     "the key belongs to 'bob', not the requester 'alice'"),
    ("attested-key-unregistered", {**ALICE}, _with(ATTESTED, user=""), DENY, "oncall",
     "the key belongs to nobody in the registry"),
    ("pin-policy", {**ALICE}, _with(ATTESTED, pin_policy="never"), DENY, "oncall",
     "PIN policy never is not allowed (always, once)"),
    ("touch-policy-unstated", {**ALICE}, _with(ATTESTED, touch_policy=""), DENY, "oncall",
     "touch policy not stated is not allowed (always, cached)"),
    ("forged-proof", {**ALICE}, FORGED, DENY, "oncall",
     "rule oncall: the attestation proof fails: the chain does not reach"),
    # Where a person decides anyway, a failing proof is theirs to weigh, in the Event.
    ("forged-proof-no-rule", {"username": "zed", "groups": ("system:authenticated",)}, FORGED,
     MANUAL, "", "the policy's default is manual; note: its attestation proof fails: the "
     "chain does not reach"),
    ("forged-proof-manual-rule", {**SRE, "orgs": ("system:masters",)}, FORGED, MANUAL,
     "break-glass", "leaves the request for a person (requester 'root-sre'); note: its "
     "attestation proof fails"),
    ("forged-proof-rule-without-attestation", {**CI, "kind": "p384"},
     _with(FORGED, mode="registry-key"), DENY, "ci", "rule ci: the attestation proof fails"),
    ("registry-key-approve", {**DAVE, "orgs": ("dev",)}, REGISTERED_DAVE, APPROVE, "devs", ""),
    ("registry-key-attested-too", {**DAVE}, _with(ATTESTED, user="dave"), APPROVE, "devs", ""),
    ("registry-key-missing", {**DAVE}, NO_PROOF, DENY, "devs",
     "wants a hardware attestation or a registered key; got none"),
    ("no-attestation-rule", {**CI, "kind": "p384", "expiration": 600}, NO_PROOF, APPROVE, "ci",
     "no attestation"),
    ("no-attestation-rule-key", {**CI}, NO_PROOF, DENY, "ci", "key type ed25519 is not allowed"),
    ("deny-rule", {"username": "mallory", "groups": ("oncall",)}, ATTESTED, DENY, "blocked",
     "rule blocked: denies every request it matches (requester 'mallory')"),
    ("no-rule-default-manual", {"username": "zed", "groups": ("system:authenticated",)},
     NO_PROOF, MANUAL, "", "no rule matches requester 'zed' (groups: system:authenticated); "
     "the policy's default is manual"),
    ("manual-rule", {**SRE, "orgs": ("system:masters",)}, NO_PROOF, MANUAL, "break-glass",
     "rule break-glass: every check passed; this rule leaves the request for a person"),
    ("manual-rule-no-reason", {**SRE, "reason": None}, NO_PROOF, DENY, "break-glass",
     "the cred-helper/reason annotation is missing or shows nothing"),
    ("manual-rule-blank-reason", {**SRE, "reason": "  "}, NO_PROOF, DENY, "break-glass",
     "annotation is missing or shows nothing"),
    # Reasons a person would see as empty: zero-width and format characters, fillers, marks.
    *[(f"manual-rule-invisible-reason-{i}", {**SRE, "reason": text}, NO_PROOF, DENY,
       "break-glass", "annotation is missing or shows nothing")
      for i, text in enumerate(["\u200b", "\u200b\u200c\u200d\u2060", "\ufeff", "\u00a0\t\n",
                                "\u202e\u2066", "\u3164\u115f", "\u0301", "\x00\x7f",
                                "\u2028\u3000", "\U000e0041"])],
    ("manual-rule-reason-among-invisibles", {**SRE, "reason": "\u200bINC-42\u200b"}, NO_PROOF,
     MANUAL, "break-glass", "every check passed"),
    ("manual-rule-reason-non-latin", {**SRE, "reason": "障害"}, NO_PROOF, MANUAL,
     "break-glass", "every check passed"),
    ("manual-rule-too-long", {**SRE, "expiration": 7200}, NO_PROOF, DENY, "break-glass",
     "expirationSeconds 7200 exceeds 1h"),
    ("first-match-decides", {"username": "alice", "groups": ("oncall", "sre", "system:masters"),
                             "orgs": ("system:masters",)}, ATTESTED, DENY, "oncall",
     "system: group, and the rule does not name it"),
    ("other-signer", {**ALICE, "signer": "example.com/other"}, ATTESTED, MANUAL, "oncall",
     "not this broker's to decide"),
]


@pytest.mark.parametrize(("args", "attestation", "action", "rule", "reason"),
                         [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])
def test_decisions(policy, args, attestation, action, rule, reason):
    decision = policy.decide(facts(**args), attestation)
    assert (decision.action, decision.rule) == (action, rule), decision.reason
    assert reason in decision.reason
    assert decision.details.get("check")
    assert "\n" not in decision.reason


def test_every_check_has_a_deny_row():
    checks = {"subject", "key-type", "usages", "expiration", "reason", "attestation", "proof",
              "rule-denies"}
    policy = load_policy(POLICY, "policy.yaml")
    seen = {policy.decide(facts(**row[1]), row[2]).details["check"] for row in TABLE
            if row[3] == DENY}
    assert checks <= seen


def test_default_deny():
    policy = load_policy("default: deny\nrules: []\n", "p.yaml")
    decision = policy.decide(facts(username="zed", groups=()), NO_PROOF)
    assert (decision.action, decision.rule) == (DENY, "")
    assert "no rule matches requester 'zed' (groups: none); the policy's default is deny" in \
        decision.reason


def test_a_failing_proof_under_default_deny_is_denied_as_a_proof():
    policy = load_policy("default: deny\nrules: []\n", "p.yaml")
    decision = policy.decide(facts(username="zed", groups=()), FORGED)
    assert (decision.action, decision.details["check"]) == (DENY, "proof")
    assert decision.reason.startswith("no rule: the attestation proof fails")


def test_default_is_manual():
    assert load_policy("rules: []", "p.yaml").default == MANUAL


@pytest.mark.parametrize(("args", "proof", "needed"), [
    (ALICE, None, True),  # the rule wants attestation
    ({**CI, "kind": "p384"}, None, False),  # the rule does not look, and there is no proof
    ({**CI, "kind": "p384"}, b"proof", True),  # a proof present: a forged one must deny
    ({"username": "mallory", "groups": ()}, b"proof", False),  # denied whatever it proves
    ({"username": "zed", "groups": ()}, b"proof", True),
    ({"username": "zed", "groups": ()}, None, False),
])
def test_needs_attestation(policy, args, proof, needed):
    assert policy.needs_attestation(facts(proof=proof, **args)) is needed


def test_attestation_settings(policy):
    config = policy.attestation
    assert config.max_age == 120
    assert config.roots_pem == YUBICO_PIV_ROOTS
    assert [(e.user, e.key_sha256, e.serial) for e in config.registry] == [
        ("alice", "ab" * 32, None), ("dave", "", 1234567)]


def test_yubico_roots_are_the_documented_ones():
    subjects = [x509.load_pem_x509_certificate(r).subject.rfc4514_string()
                for r in load_policy("rules: []", "p").attestation.roots_pem]
    assert subjects == ["CN=Yubico PIV Root CA Serial 263751",
                        "CN=Yubico U2F Root CA Serial 457200631"]


def _test_ca_pem(name: str = "Test attestation CA") -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(Encoding.PEM)


def test_roots_inline_and_from_files(tmp_path):
    inline, in_file = _test_ca_pem("inline CA"), _test_ca_pem("file CA")
    (tmp_path / "roots").mkdir()
    (tmp_path / "roots" / "ca.pem").write_bytes(in_file)
    indented = textwrap.indent(inline.decode(), "          ")
    (tmp_path / "policy.yaml").write_text(
        "attestation:\n  roots:\n    - roots/ca.pem\n    - |\n" + indented + "rules: []\n")
    policy = load_policy_file(str(tmp_path / "policy.yaml"))
    names = [x509.load_pem_x509_certificate(r).subject.rfc4514_string()
             for r in policy.attestation.roots_pem]
    assert names == ["CN=file CA", "CN=inline CA"]


def test_root_file_with_no_certificate(tmp_path):
    (tmp_path / "bad.pem").write_text("not a certificate\n")
    (tmp_path / "policy.yaml").write_text("rules: []\nattestation:\n  roots: [bad.pem]\n")
    with pytest.raises(PolicyError) as caught:
        load_policy_file(str(tmp_path / "policy.yaml"))
    assert caught.value.message == (f"policy {tmp_path}/policy.yaml:3: attestation.roots[0]: "
                                    "is not PEM certificates (nor a file of them) that "
                                    "cred-helper can read")


def test_policy_file_unreadable(tmp_path):
    with pytest.raises(PolicyError, match="cannot be read"):
        load_policy_file(str(tmp_path / "absent.yaml"))
    (tmp_path / "latin1.yaml").write_bytes(b"rules: []\n# caf\xe9\n")
    with pytest.raises(PolicyError, match="is not UTF-8"):
        load_policy_file(str(tmp_path / "latin1.yaml"))


@pytest.mark.parametrize(("text", "expected"), [
    ("max-expiration: 1800", (1800, "1800s")),
    ("max-expiration: 1h30m", (5400, "1h30m")),
    ("max-expiration: '90s'", (90, "90s")),
])
def test_durations(text, expected):
    policy = load_policy("rules:\n - name: r\n   match: {users: [a]}\n   action: approve\n"
                         f"   attestation: none\n   {text}\n", "p")
    rule = policy.rules[0]
    assert (rule.max_expiration, rule.max_expiration_text) == expected


RULE = "rules:\n  - name: r\n    match: {users: [a]}\n    action: manual\n"

# (id, policy text, line, field, a fragment of the problem)
BAD = [
    ("not-yaml", "rules: [\n", 2, "", "not YAML"),
    ("not-yaml-indent", "rules:\n - a\n  b: c\n", 3, "", "not YAML"),
    ("empty", "", 0, "", "is empty"),
    ("two-documents", "rules: []\n---\nrules: []\n", 2, "", "another document"),
    ("not-a-mapping", "- rules\n", 1, "(top level)", "is not a mapping"),
    ("unknown-top-field", "rules: []\nrulez: []\n", 2, "(top level)", "unknown field 'rulez'"),
    ("rules-missing", "default: deny\n", 1, "rules", "is required"),
    ("rules-not-list", "rules: {}\n", 1, "rules", "is not a list"),
    ("duplicate-key", "rules: []\ndefault: deny\ndefault: manual\n", 3, "default",
     "appears twice"),
    ("default-approve", "default: approve\nrules: []\n", 1, "default",
     "'approve' is not one of manual, deny"),
    ("alias", "x: &a [1]\nrules: *a\n", 2, "", "aliases"),
    ("python-tag", "rules: !!python/object/apply:os.system ['true']\n", 1, "rules",
     "is not allowed"),
    ("custom-tag", "default: !secret manual\nrules: []\n", 1, "default", "is not allowed"),
    ("unknown-rule-field", RULE + "    colour: red\n", 5, "rules[0]", "unknown field 'colour'"),
    ("empty-rule-name", RULE.replace("name: r", "name: ''"), 2, "rules[0].name",
     "non-empty string"),
    ("bad-rule-name", RULE.replace("name: r", "name: 'on call'"), 2, "rules[0].name",
     "is not a rule name"),
    ("duplicate-names", RULE + RULE.replace("rules:\n", ""), 5, "rules[1].name",
     "'r' is already the name of the rule on line 2"),
    ("name-missing", "rules:\n  - match: {users: [a]}\n    action: deny\n", 2, "rules[0].name",
     "is required"),
    ("action-unknown", RULE.replace("manual", "allow"), 4, "rules[0].action",
     "'allow' is not one of approve, manual, deny"),
    ("match-empty", RULE.replace("{users: [a]}", "{}"), 3, "rules[0].match",
     "names no users and no groups"),
    ("match-unknown", RULE.replace("users", "user"), 3, "rules[0].match",
     "unknown field 'user'"),
    ("match-users-not-list", RULE.replace("[a]", "a"), 3, "rules[0].match.users",
     "is not a list"),
    ("match-user-number", RULE.replace("[a]", "[5]"), 3, "rules[0].match.users[0]",
     "non-empty string"),
    ("match-user-twice", RULE.replace("[a]", "[a, a]"), 3, "rules[0].match.users[1]",
     "listed twice"),
    ("approve-without-expiration", RULE.replace("manual", "approve") + "    attestation: none\n",
     2, "rules[0].max-expiration", "is required in a rule that approves"),
    ("approve-without-attestation", RULE.replace("manual", "approve")
     + "    max-expiration: 30m\n", 2, "rules[0].attestation", "is required"),
    ("negative-duration", RULE + "    max-expiration: -30\n", 5, "rules[0].max-expiration",
     "-30 is not a positive duration"),
    ("zero-duration", RULE + "    max-expiration: 0s\n", 5, "rules[0].max-expiration",
     "not a positive duration"),
    ("bad-duration", RULE + "    max-expiration: 30 minutes\n", 5, "rules[0].max-expiration",
     "is not a duration"),
    ("bool-duration", RULE + "    max-expiration: yes\n", 5, "rules[0].max-expiration",
     "is not a duration"),
    ("unknown-key-type", RULE + "    key-types: [ed25519, dsa]\n", 5, "rules[0].key-types[1]",
     "'dsa' is not one of ed25519, p256, p384, rsa"),
    ("no-key-types", RULE + "    key-types: []\n", 5, "rules[0].key-types", "allows no key type"),
    ("require-reason-not-bool", RULE + "    require-reason: maybe\n", 5,
     "rules[0].require-reason", "'maybe' is not true or false"),
    ("attestation-unknown", RULE + "    attestation: optional\n", 5, "rules[0].attestation",
     "'optional' is not one of required, registry-key, none"),
    ("pin-without-attestation", RULE + "    pin-policies: [once]\n", 5,
     "rules[0].pin-policies", "set attestation: required"),
    ("touch-unknown", RULE + "    attestation: required\n    touch-policies: [sometimes]\n", 6,
     "rules[0].touch-policies[0]", "is not one of never, always, cached"),
    ("subject-group-not-list", RULE + "    subject-groups: dev\n", 5, "rules[0].subject-groups",
     "is not a list"),
    ("attestation-unknown-field", "attestation: {root: []}\nrules: []\n", 1, "attestation",
     "unknown field 'root'"),
    ("roots-empty", "attestation:\n  roots: []\nrules: []\n", 2, "attestation.roots",
     "is empty"),
    ("root-bad-pem", "attestation:\n  roots:\n    - |\n      -----BEGIN CERTIFICATE-----\n"
     "      AAAA\n      -----END CERTIFICATE-----\nrules: []\n", 3, "attestation.roots[0]",
     "is not PEM certificates"),
    ("root-missing-file", "attestation:\n  roots: [/nonexistent/ca.pem]\nrules: []\n", 2,
     "attestation.roots[0]", "cannot read '/nonexistent/ca.pem'"),
    ("max-age-negative", "attestation: {max-age: -1}\nrules: []\n", 1, "attestation.max-age",
     "not a positive duration"),
    ("registry-not-list", "attestation: {registry: {}}\nrules: []\n", 1,
     "attestation.registry", "is not a list"),
    ("registry-no-user", "attestation:\n  registry:\n    - serial: 5\nrules: []\n", 3,
     "attestation.registry[0].user", "is required"),
    ("registry-neither", "attestation:\n  registry:\n    - user: a\nrules: []\n", 3,
     "attestation.registry[0]", "exactly one of key-sha256 or serial"),
    ("registry-both", "attestation:\n  registry:\n    - {user: a, serial: 5, key-sha256: "
     + "ab" * 32 + "}\nrules: []\n", 3, "attestation.registry[0]", "exactly one"),
    ("registry-bad-digest", "attestation:\n  registry:\n    - {user: a, key-sha256: abc}\n"
     "rules: []\n", 3, "attestation.registry[0].key-sha256", "64 digits"),
    *[(f"registry-serial-{spelling}", "attestation:\n  registry:\n    - user: a\n"
       f"      serial: {spelling}\nrules: []\n", 4, "attestation.registry[0].serial",
       "is not a device serial in plain decimal digits")
      # YAML 1.1 reads these as 83, 685230, 1234, 31, 5, 123; the rest are not integers
      for spelling in ("0123", "190:20:30", "1_234", "0x1F", "0b101", "+123", "-5", "0",
                       "'12345678'", '"12345678"', "1e3", "12345678.0", "true", "~")],
    ("registry-serial-too-large", "attestation:\n  registry:\n    - {user: a, serial: "
     "18446744073709551616}\nrules: []\n", 3, "attestation.registry[0].serial",
     "larger than any device serial"),
    ("not-held-in-approve-rule", RULE.replace("manual", "approve") + "    attestation: none\n"
     "    max-expiration: 1h\n    groups-not-held: [system:masters]\n", 7,
     "rules[0].groups-not-held", "only in a rule whose action is manual"),
    ("not-held-in-deny-rule", RULE.replace("manual", "deny")
     + "    groups-not-held: [system:masters]\n", 5, "rules[0].groups-not-held",
     "only in a rule whose action is manual"),
    ("not-held-any", RULE + "    groups-not-held: ['*']\n", 5, "rules[0].groups-not-held",
     "name each group"),
    ("not-held-empty", RULE + "    groups-not-held: []\n", 5, "rules[0].groups-not-held",
     "is empty"),
    ("asks-for-any", RULE.replace("{users: [a]}", "{users: [a], asks-for: ['*']}"), 3,
     "rules[0].match.asks-for", "name each group"),
    ("asks-for-not-list", RULE.replace("{users: [a]}", "{users: [a], asks-for: x}"), 3,
     "rules[0].match.asks-for", "is not a list"),
    ("asks-for-alone", RULE.replace("{users: [a]}", "{asks-for: [system:masters]}"), 3,
     "rules[0].match", "names no users and no groups"),
    ("registry-serial-twice", "attestation:\n  registry:\n    - {user: a, serial: 5}\n"
     "    - {user: b, serial: 5}\nrules: []\n", 4, "attestation.registry[1]",
     "already registered to 'a'"),
    ("registry-key-twice", "attestation:\n  registry:\n    - {user: a, key-sha256: " + "AB" * 32
     + "}\n    - {user: b, key-sha256: " + "ab" * 32 + "}\nrules: []\n", 4,
     "attestation.registry[1]", "already registered to 'a'"),
    ("deep-nesting", "rules:\n - " + "[" * 200 + "]" * 200 + "\n", 2, "", "nested too deeply"),
    ("very-deep-nesting", "rules:\n - " + "[" * 20000 + "]" * 20000 + "\n", 2, "", "nest"),
]


@pytest.mark.parametrize(("text", "line", "field", "problem"), [row[1:] for row in BAD],
                         ids=[row[0] for row in BAD])
def test_refused_policies(text, line, field, problem):
    with pytest.raises(PolicyError) as caught:
        load_policy(text, "policy.yaml")
    error = caught.value
    assert (error.source, error.line, error.field) == ("policy.yaml", line, field)
    assert problem in error.problem
    place = f"policy.yaml:{line}" if line else "policy.yaml"
    assert error.message.startswith(f"policy {place}: ")
    assert "\n" not in error.message and error.hint


def test_a_bad_last_rule_refuses_the_whole_file():
    good = RULE
    bad = good + "  - name: s\n    match: {users: [b]}\n    action: approve\n"
    assert load_policy(good, "p").rules[0].name == "r"
    with pytest.raises(PolicyError, match="rules\\[1\\]"):
        load_policy(bad, "p")


def only_policy_errors(text: str, seed: int, first_line: int = 0) -> None:
    """150 damaged copies of `text` (from `first_line` on) are each read or refused with one
    PolicyError line, and many are refused (the damage reaches what is checked)."""
    import random

    from tests.support.fuzz import damaged_yaml

    rng = random.Random(seed)
    outcomes = {"read": 0, "refused": 0}
    for _ in range(150):
        try:
            load_policy(damaged_yaml(text, rng, first_line), "policy.yaml")
        except PolicyError as error:
            assert "\n" not in error.message
            outcomes["refused"] += 1
        else:
            outcomes["read"] += 1
    assert outcomes["refused"] > 50, outcomes


@pytest.mark.parametrize("seed", range(4))
def test_damaged_policies_raise_only_policy_error(seed):
    only_policy_errors(POLICY, seed)
