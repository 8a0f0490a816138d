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
6. checks that five wrong passwords lock the batch user's account (ACCOUNT_LOCKED).

Each step is printed; the script exits non-zero at the first failure.

    python check.py --endpoint 127.0.0.1:50051 --admin-password-file lrs-data/admin-password
"""

from __future__ import annotations

import argparse
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


def run(endpoint: str, admin_password_file: pathlib.Path, wait: float) -> None:
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

    channel.close()


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
            run(args.endpoint, args.admin_password_file, args.wait)
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
