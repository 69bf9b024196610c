"""In-memory fakes of the members ports (:mod:`herald.members.ports`): the member store, the device
registry and the token secret, for unit tests of :class:`herald.members.service.MembershipService`
without AWS.

They keep the contracts the service relies on, as the AWS adapters do:

- :class:`MemoryMembers` writes as :class:`~herald.members.adapters.dynamo_members.DynamoMemberStore`
  transacts: every item of a write with its condition, all evaluated before anything is written;
  one failed condition writes nothing and raises :class:`ConcurrentUpdate` with every item's
  cancellation reason, in the order the adapter sends the items (the member, its claims, its
  counter shard). A leave whose member item failed its guard is a leave that happened already.
- :class:`MemoryDevices` is SNS's ``CreatePlatformEndpoint``: one endpoint per token and platform
  application, the same ARN for the same token; a platform without an application, or a token the
  push service refuses, is :class:`PushNotConfigured`.
- :class:`MemorySecret` is the token secret, read on each call.

Each fake takes programmed faults (``fail``: the next calls of an operation raise the given
errors, in order) and records what it was asked, so a test can say what happened on the way.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from herald.core.errors import ConcurrentUpdate, TransientError
from herald.members.rules import Member, PushNotConfigured
from tests.faults import Fault

NONE = "None"
FAILED = "ConditionalCheckFailed"


@dataclass
class Faults:
    """Errors the next calls of an operation raise, in order (then the calls go through). Each is an
    armed :class:`tests.faults.Fault`: a test whose programmed error was never raised fails."""

    pending: dict[str, list[tuple[BaseException, Fault]]] = field(default_factory=lambda: defaultdict(list))

    def add(self, operation: str, *errors: BaseException) -> None:
        self.pending[operation].extend((e, Fault(f"{operation} raising {e!r}")) for e in errors)

    def check(self, operation: str) -> None:
        queue = self.pending.get(operation)
        if queue:
            error, fault = queue.pop(0)
            fault.fire()
            raise error


class MemoryMembers:
    """Members, subscription claims and sharded counters in memory (a
    :class:`herald.members.ports.MemberStore`).

    ``before_write(operation, member)``, when set, runs at the start of every write, before its
    conditions are evaluated: a test makes another writer's change there (a concurrent join, a
    leave) to see the service decide again on fresh reads.
    """

    def __init__(self) -> None:
        self.stored: dict[tuple[str, str], Member] = {}
        self.claimed: dict[tuple[str, str], str] = {}  # (community, subscription id) -> member id
        self.shards: Counter[tuple[str, int]] = Counter()
        self.faults = Faults()
        self.calls: list[str] = []
        self.before_write: Callable[[str, Member], None] | None = None

    def fail(self, operation: str, *errors: BaseException) -> None:
        self.faults.add(operation, *errors)

    # -- reads -----------------------------------------------------------------------------------

    def claims(self, community: str, subscription_ids: Sequence[str]) -> dict[str, str]:
        self._call("claims")
        return {
            sid: self.claimed[(community, sid)]
            for sid in dict.fromkeys(subscription_ids)
            if (community, sid) in self.claimed
        }

    def member(self, community: str, member_id: str) -> Member | None:
        self._call("member")
        return self.stored.get((community, member_id))

    def count(self, community: str) -> int:
        self._call("count")
        return sum(n for (c, _), n in self.shards.items() if c == community)

    def members(self, community: str, shard: int) -> Iterable[Member]:
        self._call("members")
        found = [m for (c, _), m in self.stored.items() if c == community and m.shard == shard]
        return sorted(found, key=lambda m: m.member_id)

    # -- writes ----------------------------------------------------------------------------------

    def create(self, member: Member) -> None:
        self._write("create", member)
        key = (member.community, member.member_id)
        reasons = [FAILED if key in self.stored else NONE]
        reasons += [self._free(member.community, sid) for sid in member.subscriptions]
        reasons.append(NONE)  # the counter shard: an ADD, no condition
        self._commit(reasons, f"a join of {member.community}")
        self.stored[key] = member
        for sid in member.subscriptions:
            self.claimed[(member.community, sid)] = member.member_id
        self.shards[(member.community, member.shard)] += 1

    def refresh(self, member: Member, new_claims: Sequence[str]) -> None:
        self._write("refresh", member)
        key = (member.community, member.member_id)
        current = self.stored.get(key)
        reasons = [NONE if current is not None and current.shard == member.shard else FAILED]
        reasons += [self._free(member.community, sid) for sid in new_claims]
        self._commit(reasons, f"a repeat join of {member.community}")
        self.stored[key] = member
        for sid in new_claims:
            self.claimed[(member.community, sid)] = member.member_id

    def save_preferences(self, member: Member, expect_token_hash: str) -> bool:
        self._write("save_preferences", member)
        key = (member.community, member.member_id)
        current = self.stored.get(key)
        if current is None or current.token_hash != expect_token_hash:
            return False
        self.stored[key] = current.model_copy(
            update={"preferences": member.preferences, "updated_at": member.updated_at}
        )
        return True

    def remove(self, community: str, member_id: str, expect_token_hash: str) -> Member | None:
        self._call("remove")
        member = self.stored.get((community, member_id))
        if member is None or member.token_hash != expect_token_hash:
            return None
        self._run_before_write("remove", member)
        current = self.stored.get((community, member_id))
        guard = current is not None and current.token_hash == expect_token_hash
        reasons = [NONE if guard else FAILED]
        reasons += [
            NONE if self.claimed.get((community, sid), member_id) == member_id else FAILED
            for sid in member.subscriptions
        ]
        reasons.append(NONE)
        try:
            self._commit(reasons, f"a leave of {community}")
        except ConcurrentUpdate as exc:
            if exc.guard_failed(0):
                return None  # left meanwhile, as the adapter answers
            raise
        del self.stored[(community, member_id)]
        for sid in member.subscriptions:
            self.claimed.pop((community, sid), None)
        self.shards[(community, member.shard)] -= 1
        return member

    # -- plumbing --------------------------------------------------------------------------------

    def _call(self, operation: str) -> None:
        self.calls.append(operation)
        self.faults.check(operation)

    def _write(self, operation: str, member: Member) -> None:
        self._call(operation)
        self._run_before_write(operation, member)

    def _run_before_write(self, operation: str, member: Member) -> None:
        if self.before_write is not None:
            self.before_write(operation, member)

    def _free(self, community: str, subscription: str) -> str:
        return FAILED if (community, subscription) in self.claimed else NONE

    @staticmethod
    def _commit(reasons: list[str], what: str) -> None:
        if FAILED in reasons:
            raise ConcurrentUpdate(f"{what}: a guard failed: {reasons}", reasons=reasons)


class MemoryDevices:
    """Mobile push endpoints in memory (a :class:`herald.members.ports.DeviceRegistry`)."""

    def __init__(self, applications: Mapping[str, str] | None = None) -> None:
        #: platform -> platform application ARN; a platform missing here has no mobile push.
        self.applications = dict(
            applications
            if applications is not None
            else {
                "fcm": "arn:aws:sns:us-east-1:123456789012:app/GCM/herald",
                "apns": "arn:aws:sns:us-east-1:123456789012:app/APNS/herald",
            }
        )
        self.refused: set[str] = set()  # tokens the push service refuses
        self.endpoints: dict[tuple[str, str], str] = {}  # (application, token) -> endpoint ARN
        self.registered: list[tuple[str, str]] = []  # every call: (platform, token)
        self.faults = Faults()

    def fail(self, *errors: BaseException) -> None:
        self.faults.add("register", *errors)

    def register(self, platform: str, token: str) -> str:
        self.registered.append((platform, token))
        application = self.applications.get(platform)
        if not application:
            raise PushNotConfigured(
                ("body", "device", "platform"), f"mobile push for {platform} is not configured"
            )
        self.faults.check("register")
        if token in self.refused:
            raise PushNotConfigured(("body", "device", "token"), "the push service refused this device token")
        digest = hashlib.sha256(f"{application}\x00{token}".encode()).hexdigest()[:32]
        return self.endpoints.setdefault((application, token), f"{application}/endpoint/{digest}")


class MemorySecret:
    """The token secret (a :class:`herald.members.ports.TokenSecret`)."""

    def __init__(self, value: bytes = b"herald-test-secret-" + b"s" * 13) -> None:
        if len(value) < 16:
            raise ValueError("a token secret has at least 16 bytes")
        self.value = value
        self.reads = 0
        self.faults = Faults()

    def fail(self, *errors: BaseException) -> None:
        self.faults.add("read", *errors)

    def __call__(self) -> bytes:
        self.reads += 1
        self.faults.check("read")
        return self.value


def unavailable(what: str = "a dependency") -> TransientError:
    """A fault that may pass (throttling, a time-out)."""
    return TransientError(f"{what}: ThrottlingException: slow down", code="ThrottlingException")
