#!/usr/bin/env python3
"""A scripted session against a running LRS suite, as an integrator would write it.

The stubs are generated from the contracts in proto/ with grpcio-tools, the way an
integrator in any language starts, and every call goes through the suite's one public
endpoint (the gateway). The session:

1. waits until gRPC health answers SERVING for "" and for every public service;
2. checks that a call without a token is UNAUTHENTICATED;
3. signs in as the bootstrap admin with the password from the file `lrs up` wrote, and
   changes that generated password;
4. creates a learner registration body (LRB) and its admin, who signs in, changes the
   generated password and creates a batch user, who does the same;
5. checks that the batch user creating a user is PERMISSION_DENIED (reading the reason from
   google.rpc.ErrorInfo);
6. checks that five wrong passwords lock the batch user's account (ACCOUNT_LOCKED);
7. as the demonstration online user (`lrs up --demo`), works the learner register: a
   demographic search for a new person finds nothing, RegisterLearner gives a ULN whose
   check digit this script verifies (and the same ULN again on a retry with the same
   request_id), registering someone never searched for is SEARCH_REQUIRED, the person is
   then found exactly and, with a misspelt family name, among the possible matches;
   GetLearner answers them by ULN and names, UpdateLearner with the version read changes
   them and the same update with that stale version is VERSION_CONFLICT; ValidateUln
   accepts a good ULN and refuses a bad one;
8. as the demonstration batch user, uploads the sample LRB file (format 2A) through
   SubmitBatchFile in chunks, follows the job with WatchBatchJob until it completes,
   checks every record's outcome and return code in GetBatchOutput (records, then the CSV
   output file) against the sample's documented expectations, and checks that a user of
   another organisation getting the job is NOT_FOUND.

Dates of birth are taken relative to today. The sample file's expectations assume an empty
register and a date before 2033 (see its README); run the check against a fresh
`lrs up --demo`, as run-check does.

Each step is printed; the script exits non-zero at the first failure.

    python check.py --endpoint 127.0.0.1:50051 --admin-password-file lrs-data/admin-password
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import pathlib
import secrets
import subprocess
import sys
import tempfile
import time
import uuid

import grpc
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

HERE = pathlib.Path(__file__).resolve().parent
PROTO_DIR = HERE.parent.parent / "proto"

# The public services whose health the gateway reports. Add each service here as it is
# implemented and routed by the gateway.
SERVICES = [
    "lrs.identity.v1.IdentityService",
    "lrs.learner.v1.LearnerService",
    "lrs.batch.v1.BatchService",
]

# Wrong sign-ins in a row that lock an account (the suite's default --lockout-threshold).
LOCKOUT_THRESHOLD = 5

# Seconds any one call may take.
CALL_TIMEOUT = 30

# Seconds a batch job may take from upload to a final state.
BATCH_TIMEOUT = 300

# The documented password of the accounts that `lrs up --demo` creates.
DEMO_PASSWORD = "demo-password-1"
DEMO_ONLINE_USER = "demo.lrb.online"
DEMO_BATCH_USER = "demo.lrb.batch"

# The sample LRB file (format 2A) and where to look for it: the batch service's test
# fixtures, else a copy beside this script.
SAMPLE_FILE_NAME = "LRB_10000001_031220261200.CSV"
SAMPLE_LOCATIONS = [
    HERE.parent.parent / "services" / "batch" / "tests" / "fixtures" / SAMPLE_FILE_NAME,
    HERE / "fixtures" / SAMPLE_FILE_NAME,
]

# Bytes per SubmitBatchFile message: small, so that even the sample goes in many chunks.
UPLOAD_CHUNK_BYTES = 512

# What each record of the sample comes to on an empty register (samples/README.md):
# MIS identifier -> (outcome, return code). STU0006 repeats STU0001.
SAMPLE_EXPECTED = {
    "STU0001": ("NEW_ULN", ""),
    "STU0002": ("NEW_ULN", ""),
    "STU0003": ("NEW_ULN", ""),
    "STU0004": ("NEW_ULN", ""),
    "STU0005": ("NEW_ULN", ""),
    "STU0006": ("DUPLICATE_IN_FILE", ""),
    "STU0007": ("NEW_ULN", ""),
    "STU0008": ("INCORRECT_FORMAT", "RC011"),
    "STU0009": ("AGE_OUT_OF_RANGE", "RC013"),
    "STU0010": ("INCORRECT_FORMAT", "RC011"),
    "STU0011": ("INSUFFICIENT_DATA", "RC006"),
    "STU0012": ("INCORRECT_FORMAT", "RC011"),
    "STU0013": ("INCORRECT_FORMAT", "RC011"),
    "STU0014": ("INCORRECT_FORMAT", "RC011"),
    "STU0015": ("NEW_ULN", ""),
    "STU0016": ("INCORRECT_FORMAT", "RC011"),
}
SAMPLE_DUPLICATES = {"STU0006": "STU0001"}

# The columns the output file appends to the input's.
OUTPUT_COLUMNS = ["ReturnCode", "Outcome", "ResultULN", "Reasons"]


class CheckFailed(Exception):
    """A step did not turn out as the contract says."""


def generate_stubs(proto_dir: pathlib.Path, out_dir: pathlib.Path) -> None:
    """Generates the Python stubs of every .proto under proto_dir into out_dir."""
    protos = sorted(str(path) for path in proto_dir.rglob("*.proto"))
    if not protos:
        raise CheckFailed(f"no .proto files under {proto_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{proto_dir}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *protos,
    ]
    subprocess.run(command, check=True)
    sys.path.insert(0, str(out_dir))


def step(text: str) -> None:
    print(f"- {text}", flush=True)


def ok(text: str = "ok") -> None:
    print(f"  {text}", flush=True)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    """The google.rpc.ErrorInfo carried by a failed call, if any."""
    status = rpc_status.from_call(error)
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


def retry_delay(error: grpc.RpcError) -> float | None:
    """The wait in google.rpc.RetryInfo, in seconds, if any."""
    status = rpc_status.from_call(error)
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    return None


def expect_failure(call, code: grpc.StatusCode, reasons: set[str] | None = None):
    """Runs call(), which must fail with code (and one of reasons, when given)."""
    try:
        call()
    except grpc.RpcError as error:
        if error.code() != code:
            raise CheckFailed(
                f"expected {code.name}, got {error.code().name}: {error.details()}"
            ) from None
        info = error_info(error)
        reason = info.reason if info else ""
        if reasons is not None and reason not in reasons:
            wanted = " or ".join(sorted(reasons))
            raise CheckFailed(f"expected reason {wanted}, got {reason or 'none'}")
        return error, reason
    raise CheckFailed(f"expected {code.name}, but the call succeeded")


def wait_for_health(channel: grpc.Channel, timeout: float) -> None:
    """Polls gRPC health until "" and every service answer SERVING."""
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + timeout
    pending = [""] + SERVICES
    while True:
        try:
            still = []
            for name in pending:
                answer = health.Check(
                    health_pb2.HealthCheckRequest(service=name), timeout=5
                )
                if answer.status != health_pb2.HealthCheckResponse.SERVING:
                    still.append(name)
            pending = still
            if not pending:
                return
        except grpc.RpcError as error:
            last = f"{error.code().name}: {error.details()}"
        else:
            last = f"not serving yet: {', '.join(repr(n) for n in pending)}"
        if time.monotonic() > deadline:
            raise CheckFailed(f"health did not answer SERVING within {timeout:.0f} s ({last})")
        time.sleep(0.2)


def uln_is_valid(uln: str) -> bool:
    """The ULN rule, computed here: 10 ASCII digits, the first 1 to 9, and the digits
    weighted 10, 9, ..., 1 summing to 10 modulo 11."""
    if len(uln) != 10 or not all("0" <= c <= "9" for c in uln) or uln[0] == "0":
        return False
    return sum(int(digit) * weight for digit, weight in zip(uln, range(10, 0, -1))) % 11 == 10


def years_ago(today: datetime.date, years: int, month: int, day: int) -> datetime.date:
    """A date of birth `years` years before today's year (day at most 28, so always real)."""
    return datetime.date(today.year - years, month, day)


def sign_in(identity, identity_pb2, username: str, password: str) -> str:
    """Signs in a user whose password need not be changed; returns the access token."""
    try:
        signed_in = identity.SignIn(
            identity_pb2.SignInRequest(username=username, password=password),
            timeout=CALL_TIMEOUT,
        )
    except grpc.RpcError as error:
        info = error_info(error)
        reason = info.reason if info else "none"
        raise CheckFailed(
            f"{username} could not sign in ({error.code().name}, reason {reason}): "
            "is the suite running with --demo?"
        ) from None
    if signed_in.password_change_required:
        raise CheckFailed(f"{username}: the demonstration password asked to be changed")
    return signed_in.access_token


class Session:
    """Sign-in and password change for one user."""

    def __init__(self, identity, identity_pb2):
        self.identity = identity
        self.pb = identity_pb2

    def sign_in_first_time(self, username: str, password: str) -> tuple[str, str]:
        """Signs in with a generated password and replaces it; returns (token, password)."""
        signed_in = self.identity.SignIn(
            self.pb.SignInRequest(username=username, password=password),
            timeout=CALL_TIMEOUT,
        )
        if not signed_in.password_change_required:
            raise CheckFailed(f"{username}: a generated password did not require a change")
        expect_failure(
            lambda: self.identity.ListUsers(
                self.pb.ListUsersRequest(), metadata=bearer(signed_in.access_token),
                timeout=CALL_TIMEOUT,
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
            {"PASSWORD_CHANGE_REQUIRED"},
        )
        new_password = secrets.token_urlsafe(18)
        changed = self.identity.ChangePassword(
            self.pb.ChangePasswordRequest(
                current_password=password, new_password=new_password
            ),
            metadata=bearer(signed_in.access_token),
            timeout=CALL_TIMEOUT,
        )
        if not changed.access_token:
            raise CheckFailed(f"{username}: ChangePassword returned no access token")
        return changed.access_token, new_password


def run(
    endpoint: str,
    admin_password_file: pathlib.Path,
    wait: float,
    demo_password: str,
    sample: pathlib.Path,
) -> None:
    from lrs.identity.v1 import identity_pb2, identity_pb2_grpc

    target = endpoint.removeprefix("http://")
    channel = grpc.insecure_channel(target)
    identity = identity_pb2_grpc.IdentityServiceStub(channel)
    session = Session(identity, identity_pb2)
    suffix = uuid.uuid4().hex[:8]

    step(f"health answers SERVING for '' and {len(SERVICES)} services at {target}")
    wait_for_health(channel, wait)
    ok()

    step("a call without a token is UNAUTHENTICATED")
    _, reason = expect_failure(
        lambda: identity.ListOrganisations(
            identity_pb2.ListOrganisationsRequest(), timeout=CALL_TIMEOUT
        ),
        grpc.StatusCode.UNAUTHENTICATED,
    )
    ok(f"ok (reason {reason or 'none'})")

    step(f"the bootstrap admin signs in with the password in {admin_password_file}")
    admin_password = admin_password_file.read_text().strip()
    admin_token, _ = session.sign_in_first_time("admin", admin_password)
    ok("ok, generated password changed")

    step("the admin creates a learner registration body")
    ukprn = f"{secrets.randbelow(10**8):08d}"
    organisation = identity.CreateOrganisation(
        identity_pb2.CreateOrganisationRequest(
            organisation=identity_pb2.Organisation(
                kind=identity_pb2.ORGANISATION_KIND_LEARNER_REGISTRATION_BODY,
                lrb_type=identity_pb2.LRB_TYPE_COLLEGE,
                display_name=f"Check College {suffix}",
                ukprn=ukprn,
            ),
            request_id=str(uuid.uuid4()),
        ),
        metadata=bearer(admin_token),
        timeout=CALL_TIMEOUT,
    ).organisation
    ok(f"ok, {organisation.organisation_id} (UKPRN {organisation.ukprn})")

    step("the admin creates the organisation's admin")
    lrb_admin_name = f"lrb-admin-{suffix}"
    lrb_admin = identity.CreateUser(
        identity_pb2.CreateUserRequest(
            user=identity_pb2.User(
                organisation_id=organisation.organisation_id,
                username=lrb_admin_name,
                given_name="Lena",
                family_name="Admin",
                roles=[identity_pb2.ROLE_ORG_ADMIN],
            ),
            request_id=str(uuid.uuid4()),
        ),
        metadata=bearer(admin_token),
        timeout=CALL_TIMEOUT,
    )
    ok(f"ok, {lrb_admin.user.user_id}")

    step("the organisation's admin signs in and changes the generated password")
    lrb_token, _ = session.sign_in_first_time(lrb_admin_name, lrb_admin.initial_password)
    ok()

    step("the organisation's admin creates a batch user")
    batch_name = f"batch-{suffix}"
    batch_user = identity.CreateUser(
        identity_pb2.CreateUserRequest(
            user=identity_pb2.User(
                username=batch_name,
                given_name="Bea",
                family_name="Batch",
                roles=[identity_pb2.ROLE_BATCH_USER],
            ),
            request_id=str(uuid.uuid4()),
        ),
        metadata=bearer(lrb_token),
        timeout=CALL_TIMEOUT,
    )
    if batch_user.user.organisation_id != organisation.organisation_id:
        raise CheckFailed("the batch user was not created in the admin's organisation")
    ok(f"ok, {batch_user.user.user_id}")

    step("the batch user signs in and changes the generated password")
    batch_token, batch_password = session.sign_in_first_time(
        batch_name, batch_user.initial_password
    )
    ok()

    step("the batch user creating a user is PERMISSION_DENIED")
    error, reason = expect_failure(
        lambda: identity.CreateUser(
            identity_pb2.CreateUserRequest(
                user=identity_pb2.User(
                    username=f"sneaky-{suffix}",
                    given_name="Not",
                    family_name="Allowed",
                    roles=[identity_pb2.ROLE_ORG_ADMIN],
                )
            ),
            metadata=bearer(batch_token),
            timeout=CALL_TIMEOUT,
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    if not reason:
        raise CheckFailed("PERMISSION_DENIED carried no google.rpc.ErrorInfo reason")
    ok(f"ok (reason {reason}, domain {error_info(error).domain})")

    step(f"{LOCKOUT_THRESHOLD} wrong passwords lock the batch user's account")
    for attempt in range(1, LOCKOUT_THRESHOLD + 1):
        expect_failure(
            lambda: identity.SignIn(
                identity_pb2.SignInRequest(username=batch_name, password=f"wrong-{attempt}-x"),
                timeout=CALL_TIMEOUT,
            ),
            grpc.StatusCode.UNAUTHENTICATED,
            {"INVALID_CREDENTIALS", "ACCOUNT_LOCKED"},
        )
    error, _ = expect_failure(
        lambda: identity.SignIn(
            identity_pb2.SignInRequest(username=batch_name, password=batch_password),
            timeout=CALL_TIMEOUT,
        ),
        grpc.StatusCode.UNAUTHENTICATED,
        {"ACCOUNT_LOCKED"},
    )
    wait_seconds = retry_delay(error)
    shown = f", retry after {wait_seconds:.0f} s" if wait_seconds is not None else ""
    ok(f"ok, even the right password now gets ACCOUNT_LOCKED{shown}")

    learner_steps(channel, identity, identity_pb2, demo_password)
    batch_steps(
        channel, identity, identity_pb2, session, lrb_token, suffix, demo_password, sample
    )

    channel.close()


# Given and family names for the learner steps, each family name with a misspelling that the
# matching rules still rank as a possible match (close by Jaro-Winkler similarity).
GIVEN_NAMES = ["Rosalind", "Theodora", "Imogen", "Beatrix", "Octavia", "Wilhelmina"]
FAMILY_NAMES = [
    ("Pemberton", "Pembertin"),
    ("Whitcombe", "Whitcomb"),
    ("Ashworth", "Ashwerth"),
    ("Fairweather", "Fairwether"),
    ("Blackwood", "Blakwood"),
]


def describe_find(pb, found) -> str:
    """A FindLearnersByDemographics answer in a line, for failure messages."""
    candidates = ", ".join(
        f"{c.learner.uln} score {c.score}" for c in found.candidates
    )
    outcome = pb.MatchOutcome.Name(found.outcome)
    return f"{outcome} ({found.response_code}) with candidates [{candidates}]"


def learner_steps(channel, identity, identity_pb2, demo_password: str) -> None:
    """The learner register as an LRB online user: find, register, find again, get, update,
    validate."""
    from google.protobuf import field_mask_pb2
    from lrs.learner.v1 import learner_pb2, learner_pb2_grpc
    from lrs.type.v1 import types_pb2

    learners = learner_pb2_grpc.LearnerServiceStub(channel)
    today = datetime.date.today()

    step(f"{DEMO_ONLINE_USER} (ONLINE_USER at the demo school) signs in")
    auth = bearer(sign_in(identity, identity_pb2, DEMO_ONLINE_USER, demo_password))
    ok()

    given = secrets.choice(GIVEN_NAMES)
    family, misspelt = secrets.choice(FAMILY_NAMES)
    born = years_ago(today, 25 + secrets.randbelow(35), 1 + secrets.randbelow(12),
                     1 + secrets.randbelow(28))
    date_of_birth = types_pb2.Date(year=born.year, month=born.month, day=born.day)
    gender = types_pb2.GENDER_FEMALE
    postcode = "yo1 7hh"  # stored and answered as "YO1 7HH"

    def search(family_name: str) -> learner_pb2.FindLearnersByDemographicsRequest:
        return learner_pb2.FindLearnersByDemographicsRequest(
            search=learner_pb2.DemographicSearch(
                given_name=given,
                family_name=family_name,
                date_of_birth=date_of_birth,
                gender=gender,
                postcode=postcode,
            )
        )

    def find(family_name: str):
        request = search(family_name)
        return learners.FindLearnersByDemographics(
            request, metadata=auth, timeout=CALL_TIMEOUT
        )

    step(f"FindLearnersByDemographics for a new person ({given} {family}, born {born}) "
         "finds no match")
    found = find(family)
    if (
        found.outcome != learner_pb2.MATCH_OUTCOME_NO_MATCH
        or found.response_code != "WSRC0001"
        or found.candidates
    ):
        raise CheckFailed(
            "expected NO_MATCH (WSRC0001) without candidates, got "
            + describe_find(learner_pb2, found)
        )
    ok("ok, NO_MATCH (WSRC0001)")

    step("RegisterLearner with a request_id allocates a ULN with a valid check digit")
    register = learner_pb2.RegisterLearnerRequest(
        learner=learner_pb2.Learner(
            given_name=given,
            family_name=family,
            date_of_birth=date_of_birth,
            gender=gender,
            postcode=postcode,
            verification_type=learner_pb2.VERIFICATION_TYPE_PASSPORT,
            ability_to_share=types_pb2.ABILITY_TO_SHARE_NOTICE_SEEN,
        ),
        request_id=str(uuid.uuid4()),
    )
    registered = learners.RegisterLearner(register, metadata=auth, timeout=CALL_TIMEOUT)
    learner = registered.learner
    uln = learner.uln
    problems = []
    if registered.response_code != "WSRC0005":
        problems.append(f"response_code {registered.response_code!r}, expected 'WSRC0005'")
    if not uln_is_valid(uln):
        problems.append(f"ULN {uln!r} fails the ULN rule (format or check digit)")
    if (learner.given_name, learner.family_name) != (given, family):
        problems.append(f"names {learner.given_name!r} {learner.family_name!r}")
    if learner.date_of_birth != date_of_birth:
        problems.append(f"date of birth {learner.date_of_birth}")
    if learner.postcode != "YO1 7HH":
        problems.append(f"postcode {learner.postcode!r}, expected 'YO1 7HH'")
    if learner.status != learner_pb2.LEARNER_STATUS_ACTIVE:
        problems.append(f"status {learner_pb2.LearnerStatus.Name(learner.status)}")
    if problems:
        raise CheckFailed("RegisterLearner answered " + "; ".join(problems))
    ok(f"ok, ULN {uln} (WSRC0005)")

    step("RegisterLearner again with the same request_id answers the same ULN")
    again = learners.RegisterLearner(register, metadata=auth, timeout=CALL_TIMEOUT)
    if again.learner.uln != uln:
        raise CheckFailed(f"the retry answered ULN {again.learner.uln!r}, not {uln}")
    ok()

    step("RegisterLearner of a person never searched for is SEARCH_REQUIRED")
    stranger_born = years_ago(today, 30 + secrets.randbelow(20), 1 + secrets.randbelow(12),
                              1 + secrets.randbelow(28))
    _, reason = expect_failure(
        lambda: learners.RegisterLearner(
            learner_pb2.RegisterLearnerRequest(
                learner=learner_pb2.Learner(
                    given_name="Cordelia",
                    family_name="Ravenscroft",
                    date_of_birth=types_pb2.Date(
                        year=stranger_born.year, month=stranger_born.month,
                        day=stranger_born.day,
                    ),
                    gender=types_pb2.GENDER_FEMALE,
                    postcode="TR1 2HE",
                    verification_type=learner_pb2.VERIFICATION_TYPE_PASSPORT,
                    ability_to_share=types_pb2.ABILITY_TO_SHARE_NOTICE_SEEN,
                ),
                request_id=str(uuid.uuid4()),
            ),
            metadata=auth,
            timeout=CALL_TIMEOUT,
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        {"SEARCH_REQUIRED"},
    )
    ok(f"ok, FAILED_PRECONDITION (reason {reason})")

    step("FindLearnersByDemographics finds the registered person exactly")
    found = find(family)
    if (
        found.outcome != learner_pb2.MATCH_OUTCOME_EXACT_MATCH
        or found.response_code != "WSRC0004"
        or len(found.candidates) != 1
        or found.candidates[0].learner.uln != uln
        or found.candidates[0].score != 100
    ):
        raise CheckFailed(
            f"expected EXACT_MATCH (WSRC0004) of {uln} alone with score 100, "
            f"got {describe_find(learner_pb2, found)}"
        )
    ok("ok, EXACT_MATCH (WSRC0004), score 100")

    step(f"FindLearnersByDemographics with the family name misspelt ({misspelt}) offers them "
         "as a possible match")
    found = find(misspelt)
    scores = {c.learner.uln: c.score for c in found.candidates}
    if (
        found.outcome != learner_pb2.MATCH_OUTCOME_POSSIBLE_MATCHES
        or found.response_code != "WSRC0003"
        or uln not in scores
    ):
        raise CheckFailed(
            f"expected POSSIBLE_MATCHES (WSRC0003) with {uln} among the candidates, "
            f"got {describe_find(learner_pb2, found)}"
        )
    ok(f"ok, POSSIBLE_MATCHES (WSRC0003), {len(scores)} candidate(s), {uln} scored {scores[uln]}")

    def get(given_name: str, family_name: str):
        return learners.GetLearner(
            learner_pb2.GetLearnerRequest(
                uln=uln, given_name=given_name, family_name=family_name
            ),
            metadata=auth,
            timeout=CALL_TIMEOUT,
        )

    step("GetLearner by ULN and names answers the learner")
    got = get(given, family)
    if (
        got.outcome != learner_pb2.MATCH_OUTCOME_EXACT_MATCH
        or got.response_code != "WSRC0004"
        or got.found_uln != uln
        or got.master_substituted
        or got.learner.uln != uln
        or got.learner.date_of_birth != date_of_birth
    ):
        raise CheckFailed(
            f"expected EXACT_MATCH (WSRC0004) of {uln} with its details, got "
            f"{learner_pb2.MatchOutcome.Name(got.outcome)} ({got.response_code}), "
            f"found_uln {got.found_uln!r}, learner.uln {got.learner.uln!r}"
        )
    version = got.learner.version
    ok(f"ok, EXACT_MATCH (WSRC0004), version {version}")

    step("GetLearner by that ULN with other names is NO_MATCH")
    got = get("Someone", "Else")
    if (
        got.outcome != learner_pb2.MATCH_OUTCOME_NO_MATCH
        or got.response_code != "WSRC0001"
        or got.found_uln
        or got.HasField("learner")
    ):
        raise CheckFailed(
            f"expected NO_MATCH (WSRC0001) without a learner, got "
            f"{learner_pb2.MatchOutcome.Name(got.outcome)} ({got.response_code}), "
            f"found_uln {got.found_uln!r}"
        )
    ok("ok, NO_MATCH (WSRC0001)")

    step(f"UpdateLearner with the version read ({version}) changes the email address")
    email = f"{given.lower()}.{family.lower()}@example.org"
    update = learner_pb2.UpdateLearnerRequest(
        learner=learner_pb2.Learner(uln=uln, version=version, email_address=email),
        update_mask=field_mask_pb2.FieldMask(paths=["email_address"]),
    )
    updated = learners.UpdateLearner(update, metadata=auth, timeout=CALL_TIMEOUT)
    if (
        not updated.changed
        or updated.response_code != "WSRC0006"
        or updated.learner.email_address != email
        or updated.learner.version <= version
        or updated.learner.family_name != family
    ):
        raise CheckFailed(
            f"expected changed (WSRC0006) with email {email!r} and a version above {version}, "
            f"got changed {updated.changed} ({updated.response_code}), email "
            f"{updated.learner.email_address!r}, version {updated.learner.version}, family "
            f"name {updated.learner.family_name!r}"
        )
    new_version = updated.learner.version
    ok(f"ok, changed (WSRC0006), version {new_version}")

    step(f"the same update again with the stale version {version} is VERSION_CONFLICT")
    _, reason = expect_failure(
        lambda: learners.UpdateLearner(update, metadata=auth, timeout=CALL_TIMEOUT),
        grpc.StatusCode.ABORTED,
        {"VERSION_CONFLICT"},
    )
    got = get(given, family)
    if got.learner.version != new_version or got.learner.email_address != email:
        raise CheckFailed(
            f"after the refused update the learner has version {got.learner.version} and email "
            f"{got.learner.email_address!r}, expected {new_version} and {email!r}"
        )
    ok(f"ok, ABORTED (reason {reason}), version still {new_version}")

    step(f"ValidateUln accepts {uln}")
    answer = learners.ValidateUln(
        learner_pb2.ValidateUlnRequest(uln=uln), metadata=auth, timeout=CALL_TIMEOUT
    )
    if not answer.valid or answer.fault != learner_pb2.ULN_FAULT_UNSPECIFIED:
        raise CheckFailed(
            f"ValidateUln({uln}) answered valid {answer.valid}, fault "
            f"{learner_pb2.UlnFault.Name(answer.fault)}"
        )
    ok()

    bad = uln[:9] + str((int(uln[9]) + 1) % 10)
    if uln_is_valid(bad):
        raise CheckFailed(f"the check's own ULN rule accepts {bad}")
    step(f"ValidateUln refuses {bad} (check digit changed) as CHECK_DIGIT")
    answer = learners.ValidateUln(
        learner_pb2.ValidateUlnRequest(uln=bad), metadata=auth, timeout=CALL_TIMEOUT
    )
    if answer.valid or answer.fault != learner_pb2.ULN_FAULT_CHECK_DIGIT:
        raise CheckFailed(
            f"ValidateUln({bad}) answered valid {answer.valid}, fault "
            f"{learner_pb2.UlnFault.Name(answer.fault)}"
        )
    ok()


def find_sample() -> pathlib.Path:
    for path in SAMPLE_LOCATIONS:
        if path.is_file():
            return path
    raise CheckFailed(
        "the sample LRB file is in none of " + ", ".join(str(p) for p in SAMPLE_LOCATIONS)
    )


def read_csv(text: str) -> list[list[str]]:
    """The rows of a CSV text, wholly blank rows left out (as the batch service skips them)."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return [row for row in rows if any(value.strip() for value in row)]


def as_output_value(value: str) -> str:
    """An input value as the output file writes it (formula-like values get a leading ')."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def batch_steps(
    channel,
    identity,
    identity_pb2,
    session: Session,
    lrb_token: str,
    suffix: str,
    demo_password: str,
    sample: pathlib.Path,
) -> None:
    """An LRB file as the demo school's batch user: upload, follow, output, and another
    organisation's view of the job."""
    from lrs.batch.v1 import batch_pb2, batch_pb2_grpc

    batch = batch_pb2_grpc.BatchServiceStub(channel)
    content = sample.read_bytes()
    rows = read_csv(content.decode("utf-8-sig"))
    headings, records = rows[0], rows[1:]
    mis_column = headings.index("MISIdentifier")
    mis_ids = [record[mis_column] for record in records]
    if sorted(mis_ids) != sorted(SAMPLE_EXPECTED):
        raise CheckFailed(f"{sample} holds records {mis_ids}, not the documented sample")
    final_statuses = {
        batch_pb2.JOB_STATUS_COMPLETED,
        batch_pb2.JOB_STATUS_FAILED,
        batch_pb2.JOB_STATUS_CANCELLED,
    }

    def status_name(job) -> str:
        return batch_pb2.JobStatus.Name(job.status).removeprefix("JOB_STATUS_")

    def outcome_name(outcome) -> str:
        return batch_pb2.RecordOutcome.Name(outcome).removeprefix("RECORD_OUTCOME_")

    step(f"{DEMO_BATCH_USER} (BATCH_USER at the demo school) signs in")
    auth = bearer(sign_in(identity, identity_pb2, DEMO_BATCH_USER, demo_password))
    ok()

    def upload(request_id: str):
        yield batch_pb2.SubmitBatchFileRequest(
            metadata=batch_pb2.SubmitBatchFileMetadata(
                file=batch_pb2.BatchFileMetadata(
                    file_name=sample.name,
                    job_type=batch_pb2.JOB_TYPE_LEARNER_FIND_AND_REGISTER,
                ),
                request_id=request_id,
            )
        )
        for start in range(0, len(content), UPLOAD_CHUNK_BYTES):
            yield batch_pb2.SubmitBatchFileRequest(
                chunk=content[start : start + UPLOAD_CHUNK_BYTES]
            )

    chunks = -(-len(content) // UPLOAD_CHUNK_BYTES)
    step(f"SubmitBatchFile streams {sample.name} ({len(content)} bytes, {len(records)} "
         f"records) in {chunks} chunks")
    request_id = str(uuid.uuid4())
    job = batch.SubmitBatchFile(upload(request_id), metadata=auth, timeout=CALL_TIMEOUT).job
    problems = []
    if not job.job_id:
        problems.append("no job_id")
    if job.job_type != batch_pb2.JOB_TYPE_LEARNER_FIND_AND_REGISTER:
        problems.append(f"job_type {batch_pb2.JobType.Name(job.job_type)}")
    if job.file_name != sample.name:
        problems.append(f"file_name {job.file_name!r}")
    if job.file_size_bytes != len(content):
        problems.append(f"file_size_bytes {job.file_size_bytes}, expected {len(content)}")
    if job.ukprn != "10000001":
        problems.append(f"ukprn {job.ukprn!r}, expected '10000001'")
    if job.status not in (
        batch_pb2.JOB_STATUS_QUEUED,
        batch_pb2.JOB_STATUS_PROCESSING,
        batch_pb2.JOB_STATUS_COMPLETED,
    ):
        problems.append(f"status {status_name(job)}")
    if problems:
        raise CheckFailed("SubmitBatchFile answered a job with " + "; ".join(problems))
    job_id = job.job_id
    ok(f"ok, job {job_id}, {status_name(job)}")

    step("SubmitBatchFile again with the same request_id answers the same job")
    retried = batch.SubmitBatchFile(upload(request_id), metadata=auth, timeout=CALL_TIMEOUT).job
    if retried.job_id != job_id:
        raise CheckFailed(f"the retry answered job {retried.job_id!r}, not {job_id}")
    ok()

    step("WatchBatchJob follows the job until it completes")
    final = None
    updates = 0
    for message in batch.WatchBatchJob(
        batch_pb2.WatchBatchJobRequest(job_id=job_id), metadata=auth, timeout=BATCH_TIMEOUT
    ):
        updates += 1
        watched = message.job
        if watched.job_id != job_id:
            raise CheckFailed(f"WatchBatchJob sent job {watched.job_id!r}, not {job_id}")
        if final is not None:
            raise CheckFailed(
                f"WatchBatchJob went on after the final state {status_name(final)}"
            )
        ok(f"{status_name(watched)}: {watched.counts.processed}/{watched.counts.total} processed")
        if watched.status in final_statuses:
            final = watched
    if final is None:
        raise CheckFailed(f"WatchBatchJob ended after {updates} message(s) without a final state")
    if final.status != batch_pb2.JOB_STATUS_COMPLETED:
        raise CheckFailed(
            f"the job ended {status_name(final)} ({final.failure_message or 'no message'})"
        )
    counts = final.counts
    expected_counts = {
        "total": len(records),
        "processed": len(records),
        "new_ulns": sum(1 for o, _ in SAMPLE_EXPECTED.values() if o == "NEW_ULN"),
        "duplicates": sum(1 for o, _ in SAMPLE_EXPECTED.values() if o == "DUPLICATE_IN_FILE"),
        "rejected": sum(1 for _, code in SAMPLE_EXPECTED.values() if code),
        "found": 0,
        "linked_master": 0,
        "possible_matches": 0,
        "too_many_matches": 0,
        "not_found": 0,
    }
    wrong = [
        f"{name} {getattr(counts, name)} (expected {value})"
        for name, value in expected_counts.items()
        if getattr(counts, name) != value
    ]
    if final.file_version != "2A":
        wrong.append(f"file_version {final.file_version!r} (expected '2A')")
    if not final.HasField("start_time") or not final.HasField("end_time"):
        wrong.append("start_time or end_time unset")
    if wrong:
        raise CheckFailed("the completed job has " + "; ".join(wrong))
    ok(
        f"ok, COMPLETED after {updates} update(s): {counts.new_ulns} new ULNs, "
        f"{counts.duplicates} duplicate, {counts.rejected} rejected, "
        f"{final.open_exception_count} open exceptions"
    )

    step("GetBatchOutput (records) gives every record its documented outcome, in input order")
    output_headings: list[str] = []
    results = []
    for message in batch.GetBatchOutput(
        batch_pb2.GetBatchOutputRequest(job_id=job_id, format=batch_pb2.OUTPUT_FORMAT_RECORDS),
        metadata=auth,
        timeout=CALL_TIMEOUT,
    ):
        if message.WhichOneof("content") != "records":
            raise CheckFailed(f"a RECORDS output message carried {message.WhichOneof('content')}")
        if not output_headings:
            output_headings = list(message.records.headings)
        results.extend(message.records.results)
    wrong = []
    if output_headings != headings[4:]:
        wrong.append(f"headings {output_headings} (expected {headings[4:]})")
    if len(results) != len(records):
        wrong.append(f"{len(results)} results for {len(records)} records")
    ulns_by_mis: dict[str, str] = {}
    rows_by_mis: dict[str, int] = {}
    for index, (record, result) in enumerate(zip(records, results)):
        mis = mis_ids[index]
        row = index + 2
        where = f"row {result.row} ({result.mis_identifier or 'no MIS id'})"
        expected_outcome, expected_code = SAMPLE_EXPECTED[mis]
        outcome = outcome_name(result.outcome)
        rows_by_mis[mis] = result.row
        if result.row != row or result.mis_identifier != mis:
            wrong.append(f"{where}: expected row {row} with MIS id {mis} (input order)")
            continue
        if outcome != expected_outcome or result.return_code != expected_code:
            wrong.append(
                f"{where}: {outcome} {result.return_code or '(no code)'}, expected "
                f"{expected_outcome} {expected_code or '(no code)'}; "
                f"reasons {list(result.reasons)}; "
                f"faults {[(f.column, f.return_code, f.reason) for f in result.faults]}"
            )
            continue
        if list(result.values) != record[4:]:
            wrong.append(f"{where}: values {list(result.values)}, expected {record[4:]}")
        if expected_outcome == "NEW_ULN":
            if not uln_is_valid(result.result_uln):
                wrong.append(f"{where}: result ULN {result.result_uln!r} fails the ULN rule")
            if result.faults:
                wrong.append(f"{where}: faults on a NEW_ULN record")
            ulns_by_mis[mis] = result.result_uln
        elif expected_outcome == "DUPLICATE_IN_FILE":
            first = SAMPLE_DUPLICATES[mis]
            if (
                result.result_uln != ulns_by_mis.get(first)
                or result.duplicate_of_row != rows_by_mis.get(first)
            ):
                wrong.append(
                    f"{where}: duplicate of row {result.duplicate_of_row} with ULN "
                    f"{result.result_uln!r}, expected row {rows_by_mis.get(first)} ({first}) "
                    f"with ULN {ulns_by_mis.get(first)!r}"
                )
        else:
            codes = [fault.return_code for fault in result.faults]
            if expected_code not in codes:
                wrong.append(f"{where}: faults {codes} do not include {expected_code}")
            if any(fault.row != row for fault in result.faults):
                wrong.append(f"{where}: a fault names another row")
            if result.result_uln:
                wrong.append(f"{where}: result ULN {result.result_uln!r} on a rejected record")
    new_ulns = list(ulns_by_mis.values())
    if len(set(new_ulns)) != len(new_ulns):
        wrong.append(f"the new ULNs are not distinct: {new_ulns}")
    if wrong:
        raise CheckFailed("GetBatchOutput (records):\n    " + "\n    ".join(wrong))
    ok(f"ok, {len(results)} records as documented; STU0006 has STU0001's ULN "
       f"{ulns_by_mis['STU0001']}")

    output_name = sample.stem + "_OUTPUT" + sample.suffix
    step(f"GetBatchOutput (CSV) is {output_name}: the input's columns, then "
         f"{', '.join(OUTPUT_COLUMNS)}")
    data = bytearray()
    names = set()
    for message in batch.GetBatchOutput(
        batch_pb2.GetBatchOutputRequest(job_id=job_id, format=batch_pb2.OUTPUT_FORMAT_CSV),
        metadata=auth,
        timeout=CALL_TIMEOUT,
    ):
        if message.WhichOneof("content") != "csv":
            raise CheckFailed(f"a CSV output message carried {message.WhichOneof('content')}")
        if message.csv.file_name:
            names.add(message.csv.file_name)
        data.extend(message.csv.data)
    output_rows = read_csv(bytes(data).decode("utf-8-sig"))
    wrong = []
    if names != {output_name}:
        wrong.append(f"file names {sorted(names)}, expected {output_name}")
    if not output_rows or output_rows[0] != headings + OUTPUT_COLUMNS:
        wrong.append(
            f"headings {output_rows[0] if output_rows else []}, expected the input's "
            f"followed by {OUTPUT_COLUMNS}"
        )
    if len(output_rows) - 1 != len(records):
        wrong.append(f"{len(output_rows) - 1} rows for {len(records)} records")
    for record, result, written in zip(records, results, output_rows[1:]):
        where = f"row {result.row} ({result.mis_identifier})"
        if written[: len(headings)] != [as_output_value(value) for value in record]:
            wrong.append(f"{where}: input columns {written[:len(headings)]}, expected {record}")
        appended = [
            result.return_code,
            outcome_name(result.outcome),
            result.result_uln,
            "; ".join(result.reasons),
        ]
        if written[len(headings) :] != appended:
            wrong.append(f"{where}: {written[len(headings):]}, expected {appended}")
    if wrong:
        raise CheckFailed("GetBatchOutput (CSV):\n    " + "\n    ".join(wrong))
    ok(f"ok, {len(data)} bytes, {len(output_rows) - 1} rows agreeing with the records")

    step("the check college's admin creates a batch user, who signs in")
    other_name = f"batch-other-{suffix}"
    other = identity.CreateUser(
        identity_pb2.CreateUserRequest(
            user=identity_pb2.User(
                username=other_name,
                given_name="Otto",
                family_name="Other",
                roles=[identity_pb2.ROLE_BATCH_USER],
            ),
            request_id=str(uuid.uuid4()),
        ),
        metadata=bearer(lrb_token),
        timeout=CALL_TIMEOUT,
    )
    other_token, _ = session.sign_in_first_time(other_name, other.initial_password)
    other_auth = bearer(other_token)
    ok(f"ok, {other.user.user_id}")

    step("another organisation's batch user getting the demo school's job is NOT_FOUND")
    _, reason = expect_failure(
        lambda: batch.GetBatchJob(
            batch_pb2.GetBatchJobRequest(job_id=job_id), metadata=other_auth,
            timeout=CALL_TIMEOUT,
        ),
        grpc.StatusCode.NOT_FOUND,
        {"JOB_NOT_FOUND"},
    )
    _, output_reason = expect_failure(
        lambda: list(
            batch.GetBatchOutput(
                batch_pb2.GetBatchOutputRequest(job_id=job_id), metadata=other_auth,
                timeout=CALL_TIMEOUT,
            )
        ),
        grpc.StatusCode.NOT_FOUND,
        {"JOB_NOT_FOUND"},
    )
    listed = batch.ListBatchJobs(
        batch_pb2.ListBatchJobsRequest(), metadata=other_auth, timeout=CALL_TIMEOUT
    )
    if any(listed_job.job_id == job_id for listed_job in listed.jobs):
        raise CheckFailed("ListBatchJobs of another organisation lists the demo school's job")
    ok(f"ok, GetBatchJob and GetBatchOutput NOT_FOUND (reason {reason}), not listed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--endpoint",
        default="127.0.0.1:50051",
        help="the suite's public endpoint, host:port or http://host:port",
    )
    parser.add_argument(
        "--admin-password-file",
        type=pathlib.Path,
        required=True,
        help="the admin-password file that `lrs up` wrote in its data folder",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=60.0,
        help="seconds to wait for health to answer SERVING (default 60)",
    )
    parser.add_argument(
        "--demo-password",
        default=DEMO_PASSWORD,
        help=f"the password of the `lrs up --demo` accounts (default {DEMO_PASSWORD})",
    )
    parser.add_argument(
        "--batch-file",
        type=pathlib.Path,
        default=None,
        help=f"the sample LRB file {SAMPLE_FILE_NAME} (default: the batch service's test "
        "fixtures, else clients/python/fixtures/)",
    )
    parser.add_argument(
        "--stubs-dir",
        type=pathlib.Path,
        default=None,
        help="where to generate the stubs (default: a temporary folder)",
    )
    args = parser.parse_args()

    try:
        with tempfile.TemporaryDirectory(prefix="lrs-stubs-") as temporary:
            out_dir = args.stubs_dir or pathlib.Path(temporary)
            step(f"generate the Python stubs from {PROTO_DIR}")
            generate_stubs(PROTO_DIR, out_dir)
            ok()
            sample = args.batch_file or find_sample()
            run(args.endpoint, args.admin_password_file, args.wait, args.demo_password, sample)
    except CheckFailed as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    except grpc.RpcError as error:
        info = error_info(error)
        reason = f" (reason {info.reason})" if info else ""
        print(f"FAILED: {error.code().name}: {error.details()}{reason}", file=sys.stderr)
        return 1
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"FAILED: {error}", file=sys.stderr)
        return 1
    print("client check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
