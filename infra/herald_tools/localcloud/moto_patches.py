"""Make what moto costs per request independent of how much it stores.

moto (5.2.5, and its main branch as of this writing) has paths whose cost grows with the data
held, so a local cloud gets slower, and bigger, with every upload. :func:`install` patches them in
this process, for moto's in-process mock and for a moto server thread alike; each patch keeps
moto's answers (the same results, errors and cancellation reasons) and is small enough to offer
upstream as it stands:

* **DynamoDB TransactWriteItems** deep-copies every table the transaction names, once per item,
  for its rollback, and puts the copy in place of the live table when a transaction is cancelled
  (a new table object, with a new stream). Patched: the transaction keeps an undo log of the items
  it touches (a copy of each one's state before, or its absence) and restores those in place on
  cancel; the table object and its stream stay the same. Stream records of the transaction's
  writes are held back until it commits, so a cancelled transaction leaves no record, as on
  DynamoDB.
* **DynamoDB Query** sorts every item of the table and tests each against the partition key, on
  the table's key as on an index's, so each page of a partition costs the whole table. Patched:
  the Query looks at its partition's items only: the table's own ``items[hash]``, or for an index
  whose partition key is another attribute, a map of the index's partitions built at its first
  Query and kept up to date by every write (put, delete, update, a cancelled transaction's undo).
  moto's own loop still sorts, pages, filters and projects them.
* **DynamoDB answers**: moto's JSON serializer walks every attribute of every item it answers
  (Query, Scan, GetItem, BatchGetItem, a write's old or new values, a stream record's images)
  through the AttributeValue shape, a picker with alias lookups per member: more than the Query
  itself cost per item (reading a 5,000-post feed: 15.7 s in the in-process mock, 6.5 s patched).
  Patched: a map of AttributeValues in moto's own JSON form is written in one pass (blobs
  base64-encoded, as moto's walk does), to the same bytes; anything else in it goes moto's way.
* **Model instances** (every DynamoDB item, stream record, shard iterator and SQS message moto ever
  creates, copies included: each query result, each received message) are kept in a list per
  class for moto's dashboard, for good. Patched for the DynamoDB, DynamoDB Streams and SQS models:
  the lists hold weak references, so the dashboard lists what is alive and nothing else is kept.
* **SQS queue attributes**: ``Queue.attributes`` counts the queue's messages (three scans) and
  moto reads it on every SendMessage (for ``ContentBasedDeduplication``), for every message a
  ReceiveMessage returns (for ``MessageRetentionPeriod``) and twice per name a GetQueueAttributes
  asks for. Patched: ``attributes`` holds the queue's settings; GetQueueAttributes counts, in one
  pass, only when asked for a count.
* **SQS receive and delete**: ReceiveMessage builds the list of every visible message to take the
  first ten; DeleteMessage and ChangeMessageVisibility look for the receipt handle in every
  message's handles. Patched: the visible messages are found lazily (a receive stops at its
  count); receipt handles are indexed when a message is received.
* **DynamoDB Streams shard iterators** (one per GetShardIterator and one per GetRecords) are kept
  by moto for good, so a stream poller grows the process by megabytes an hour. Patched: an
  iterator expires 15 minutes after it was handed out, as on DynamoDB Streams; GetRecords with
  an expired (or unknown) iterator answers ``ExpiredIteratorException`` (moto: a 500).

* **DynamoDB stream records** hold each write's old and new images as nested dicts, kept for the
  stream's life (some 10 KB a record for a post). Patched: each record is kept pickled and
  compressed (a tenth of that) and unpacked when read.
* **SSM imports EC2** (its region, zone, instance-type and image tables, about 100 MB) for one
  lookup of SendCommand's. Patched: ``moto.ssm.models`` is imported with a stand-in for
  ``moto.ec2`` that imports the real one when SSM first needs it.

What stays as in moto: a FIFO queue's deduplication still compares each send with the queue's
messages (Herald's queues are standard ones); a cancelled transaction's undo is not isolated
from writes other threads make to the same items meanwhile (moto has no isolation either).
"""

from __future__ import annotations

import collections
import copy
import pickle
import threading
import time
import weakref
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from .patching import Patches

_lock = threading.Lock()
_applied = Patches()
_local = threading.local()
_originals: dict[tuple[str, str], Any] = {}  # what the patches call: moto's own functions

#: Services whose model instances moto tracks only for its dashboard (tracked weakly once patched).
WEAKLY_TRACKED_SERVICES = frozenset({"dynamodb", "dynamodbstreams", "sqs"})

#: SQS queue attributes that are counts of messages, not settings.
COUNT_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesDelayed",
    "ApproximateNumberOfMessagesNotVisible",
)


# -- DynamoDB: transactions with an undo log -------------------------------------------------------


class _UndoLog:
    """The state before a transaction of each item it touches: a copy of the item, or None."""

    def __init__(self) -> None:
        self._entries: list[tuple[Any, Any, Any, Any]] = []

    def remember(self, table: Any, hash_key: Any, range_key: Any, current: Any) -> None:
        # Update changes the stored item in place, so the item itself is not enough: a copy of it.
        self._entries.append((table, hash_key, range_key, copy.deepcopy(current)))

    def restore(self) -> None:
        for table, hash_key, range_key, before in reversed(self._entries):
            # The item layout moto's Table.put_item and delete_item use.
            if table.range_key_attr is not None:
                if before is None:
                    bucket = table.items.get(hash_key)
                    if bucket is not None:
                        bucket.pop(range_key, None)
                else:
                    table.items[hash_key][range_key] = before
            elif before is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = before
            _reindex(table, hash_key, range_key)
        self._entries.clear()


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto's ``DynamoDBBackend.transact_write_items``, rolled back by an undo log of the items it
    touches instead of copies of whole tables; stream records wait for the commit."""
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()

    undo = _UndoLog()
    held: list[tuple[Any, Any, Any]] = []
    outer = getattr(_local, "stream_writes", None)
    _local.stream_writes = held
    target_items: set[tuple[str, str]] = set()

    def check_unicity(table_name: str, key: dict[str, Any]) -> None:
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    committed = False
    try:
        errors: list[tuple[str, str, dict[str, Any]] | tuple[None, None, None]] = []
        for item in transact_items:
            original_item: dict[str, Any] | None = None
            if len(list(item.keys())) > 1:
                raise TransactWriteSingleOpException
            try:
                op_type, op = next(iter(item.items()))
                if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                    raise ValueError("Unsupported transaction operation")

                table_name = op["TableName"]
                condition_expression = op.get("ConditionExpression")
                expression_attribute_names = op.get("ExpressionAttributeNames")
                expression_attribute_values = op.get("ExpressionAttributeValues")
                return_values_on_condition_check_failure = op.get("ReturnValuesOnConditionCheckFailure")

                if op_type == "Put":
                    attrs = op["Item"]
                    table = self.get_table(table_name)
                    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                    if table.range_key_attr is not None:
                        key[table.range_key_attr] = attrs[table.range_key_attr]
                else:
                    key = op["Key"]

                check_unicity(table_name, key)

                current = self.get_item(table_name, key)
                if condition_expression is not None:
                    condition_op = get_filter_expression(
                        condition_expression,
                        expression_attribute_names,
                        expression_attribute_values,
                    )
                    if not condition_op.expr(current):
                        if return_values_on_condition_check_failure == "ALL_OLD" and current:
                            original_item = current.to_json()["Attributes"]
                        raise ConditionalCheckFailed(item=original_item)

                if op_type != "ConditionCheck":
                    table = self.get_table(table_name)
                    hash_key, range_key = self.get_keys_value(table, key)
                    undo.remember(table, hash_key, range_key, current)

                if op_type == "Put":
                    self.put_item(
                        table_name,
                        op["Item"],
                        condition_expression=condition_expression,
                        expression_attribute_names=expression_attribute_names,
                        expression_attribute_values=expression_attribute_values,
                    )
                elif op_type == "Delete":
                    self.delete_item(
                        table_name,
                        key,
                        condition_expression=condition_expression,
                        expression_attribute_names=expression_attribute_names,
                        expression_attribute_values=expression_attribute_values,
                    )
                elif op_type == "Update":
                    self.update_item(
                        table_name,
                        key,
                        update_expression=op["UpdateExpression"],
                        condition_expression=condition_expression,
                        expression_attribute_names=expression_attribute_names,
                        expression_attribute_values=expression_attribute_values,
                    )
                errors.append((None, None, None))
            except (MultipleTransactionsException, MockValidationException):
                raise  # the whole request fails (rolled back below)
            except ConditionalCheckFailed as e:
                errors.append(("ConditionalCheckFailed", str(e.message), original_item))  # type: ignore[arg-type]
            except Exception as e:
                # Other errors become the item's cancellation reason, as in moto.
                errors.append((type(e).__name__, str(e), original_item))  # type: ignore[arg-type]

        if any(code is not None for code, _, _ in errors):
            raise TransactionCanceledException(errors)
        committed = True
    finally:
        _local.stream_writes = outer
        if not committed:
            undo.restore()
    # Committed: the stream records, in the order of the writes.
    for shard, old, new in held:
        _original("StreamShard", "add")(shard, old, new)


def _stream_add(self: Any, old: Any, new: Any) -> None:
    """``StreamShard.add``, held back while this thread is inside a transaction."""
    held = getattr(_local, "stream_writes", None)
    if held is None:
        _original("StreamShard", "add")(self, old, new)
        return
    # ``new`` is the stored item, which a later update could change before the commit.
    held.append((self, old, copy.deepcopy(new)))


# -- DynamoDB: a Query reads its partition --------------------------------------------------------


class IndexPartitions:
    """A secondary index's items by their index partition key, kept up to date as items are written.

    moto's ``Table.query`` sorts every item of the table and tests each one against the partition
    key, on the table's key as on an index's. The table's own partitions are ``Table.items[hash]``;
    this is the same for an index whose partition key is not the table's: built at the first Query
    of the index, then kept by ``put_item``, ``delete_item``, ``update_item`` and a cancelled
    transaction's undo, the paths by which moto changes a stored item.
    """

    __slots__ = ("attrs", "buckets", "source", "where")

    def __init__(self, table: Any, attrs: tuple[str, ...]) -> None:
        self.attrs = attrs  # the index's partition key: its HASH attributes, in schema order
        self.source = table.items  # the dict built from (a new one means a rebuild)
        self.buckets: dict[tuple[Any, ...], dict[tuple[Any, Any], Any]] = {}
        self.where: dict[tuple[Any, Any], tuple[Any, ...]] = {}  # item key -> its bucket
        for stored in table.items.values():
            for item in stored.values() if table.range_key_attr is not None else (stored,):
                self.put(item)

    def put(self, item: Any) -> None:
        key = (item.hash_key, item.range_key)
        self.discard(key)
        values = tuple(item.attrs.get(name) for name in self.attrs)
        if any(value is None for value in values):
            return  # not in the index: it lacks a key attribute
        try:
            bucket = self.buckets.setdefault(values, {})
        except TypeError:
            return  # a map or list where the key should be: no key value can equal it
        bucket[key] = item
        self.where[key] = values

    def discard(self, key: tuple[Any, Any]) -> None:
        values = self.where.pop(key, None)
        if values is not None:
            bucket = self.buckets[values]
            del bucket[key]
            if not bucket:
                del self.buckets[values]


#: Table -> index name -> its partitions, for the indexes queried so far.
_index_partitions: weakref.WeakKeyDictionary[Any, dict[str, IndexPartitions]] = weakref.WeakKeyDictionary()


def _table_order(item: Any) -> Any:
    """The order of moto's ``Table.all_items``."""
    return (item.hash_key, item.range_key) if item.range_key else item.hash_key


def _table_partition(table: Any, hash_key: Any) -> list[Any]:
    stored = table.items.get(hash_key)  # .get: moto's items is a defaultdict
    if stored is None:
        return []
    if table.range_key_attr is None:
        return [stored]
    return sorted(stored.values(), key=_table_order)


def query_candidates(
    table: Any, hash_key: Any, index_name: str | None, hash_key_conditions: Any
) -> list[Any] | None:
    """The items a Query of this partition can match, in moto's order (its filters still apply), or
    None where moto's own way is left to answer (no partition key given, an unknown index)."""
    try:
        if index_name is None:
            return None if hash_key is None else _table_partition(table, hash_key)
        index = next((i for i in table.all_indexes() if i.name == index_name), None)
        if index is None:
            return None  # moto answers the ValidationException
        attrs = tuple(k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH")
        conditions = dict(hash_key_conditions or ())
        if not attrs or set(conditions) != set(attrs):
            return None
        if attrs == (table.hash_key_attr,):  # a local index, or a global one on the table's key
            return _table_partition(table, conditions[table.hash_key_attr])
        built = _index_partitions.setdefault(table, {})
        partitions = built.get(index_name)
        if partitions is None or partitions.attrs != attrs or partitions.source is not table.items:
            partitions = built[index_name] = IndexPartitions(table, attrs)
        bucket = partitions.buckets.get(tuple(conditions[name] for name in attrs))
    except TypeError:
        return None  # an unhashable key value: moto compares
    return [] if bucket is None else sorted(bucket.values(), key=_table_order)


def _query(
    self: Any,
    hash_key: Any,
    range_comparison: Any,
    range_objs: Any,
    limit: Any,
    exclusive_start_key: Any,
    scan_index_forward: Any,
    projection_expressions: Any,
    index_name: str | None = None,
    consistent_read: bool = False,
    filter_expression: Any = None,
    hash_key_conditions: Any = None,
    range_key_conditions: Any = None,
    **filter_kwargs: Any,
) -> Any:
    """moto's ``Table.query`` over the partition's items instead of the whole table's.

    Upstream this is one line of ``Table.query``: iterate :func:`query_candidates` instead of
    ``self.all_items()``; here the candidates are handed to that call of ``all_items``.
    """
    candidates = query_candidates(self, hash_key, index_name, hash_key_conditions)
    _local.query_candidates = None if candidates is None else (self, candidates)
    try:
        return _original("Table", "query")(
            self,
            hash_key,
            range_comparison,
            range_objs,
            limit,
            exclusive_start_key,
            scan_index_forward,
            projection_expressions,
            index_name,
            consistent_read,
            filter_expression,
            hash_key_conditions=hash_key_conditions,
            range_key_conditions=range_key_conditions,
            **filter_kwargs,
        )
    finally:
        _local.query_candidates = None


def _all_items(self: Any) -> list[Any]:
    held = getattr(_local, "query_candidates", None)
    if held is not None and held[0] is self:
        _local.query_candidates = None
        return held[1]
    return _original("Table", "all_items")(self)


def _reindex(table: Any, hash_key: Any, range_key: Any) -> None:
    """Put the item stored at this key (or its absence) into the table's index partitions."""
    built = _index_partitions.get(table)
    if not built:
        return
    stored = table.items.get(hash_key)
    item = stored.get(range_key) if stored is not None and table.range_key_attr is not None else stored
    for partitions in built.values():
        if item is None:
            partitions.discard((hash_key, range_key))
        else:
            partitions.put(item)


def _table_put_item(self: Any, *args: Any, **kwargs: Any) -> Any:
    item = _original("Table", "put_item")(self, *args, **kwargs)
    for partitions in _index_partitions.get(self, {}).values():
        partitions.put(item)
    return item


def _table_delete_item(self: Any, hash_key: Any, range_key: Any) -> Any:
    item = _original("Table", "delete_item")(self, hash_key, range_key)
    if item is not None:
        for partitions in _index_partitions.get(self, {}).values():
            partitions.discard((item.hash_key, item.range_key))
    return item


def _update_item(self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
    """moto's ``DynamoDBBackend.update_item``, which changes the stored item in place; then the
    item is put into the index partitions again (also after an error: moto may have changed it)."""
    try:
        return _original("DynamoDBBackend", "update_item")(self, table_name, key, *args, **kwargs)
    finally:
        try:
            table = self.get_table(table_name)  # by name or ARN
        except Exception:
            table = None  # moto answered that error already
        if table is not None and _index_partitions.get(table):
            try:
                hash_key, range_key = self.get_keys_value(table, key)
            except Exception:
                _index_partitions.pop(table, None)  # a key moto reads its own way: rebuilt when next queried
            else:
                _reindex(table, hash_key, range_key)


# -- DynamoDB Streams: records kept packed ---------------------------------------------------------


def _stream_record_init(self: Any, *args: Any, **kwargs: Any) -> None:
    """moto's ``StreamRecord.__init__``; then the record is kept pickled and compressed."""
    _original("StreamRecord", "__init__")(self, *args, **kwargs)
    plain = self.__dict__.pop("_record")
    self.__dict__["_packed"] = zlib.compress(pickle.dumps(plain, protocol=pickle.HIGHEST_PROTOCOL), 1)


def _get_stream_record(self: Any) -> dict[str, Any]:
    packed = self.__dict__.get("_packed")
    if packed is None:
        return self.__dict__["_record"]  # while moto's __init__ builds it
    return pickle.loads(zlib.decompress(packed))  # a fresh copy each time, as GetRecords serialises it


def _set_stream_record(self: Any, value: dict[str, Any]) -> None:
    self.__dict__.pop("_packed", None)
    self.__dict__["_record"] = value


def _unpack_stream_records() -> None:
    """Put the live records back in moto's form (``record``, a dict), for moto's own code."""
    from moto.dynamodb.models.table import StreamRecord

    for record in list(StreamRecord.__dict__.get("instances_tracked") or ()):
        if "_packed" in record.__dict__ or "_record" in record.__dict__:
            plain = _get_stream_record(record)
            record.__dict__.pop("_packed", None)
            record.__dict__.pop("_record", None)
            record.__dict__["record"] = plain  # shadowed by the property until it is taken out


# -- Model instances tracked weakly ----------------------------------------------------------------


class WeakInstances:
    """A class's tracked instances (moto's ``instances_tracked``), without keeping them alive."""

    def __init__(self, items: Iterable[Any] = ()) -> None:
        self._refs: dict[int, weakref.ref[Any]] = {}
        for item in items:
            self.append(item)

    def append(self, instance: Any) -> None:
        refs = self._refs

        def forget(ref: weakref.ref[Any]) -> None:
            refs.pop(id(ref), None)

        ref = weakref.ref(instance, forget)
        refs[id(ref)] = ref

    def __iter__(self) -> Iterator[Any]:
        for ref in list(self._refs.values()):
            instance = ref()
            if instance is not None:
                yield instance

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _model_new(cls: type, *args: Any, **kwargs: Any) -> Any:
    from moto.core.common_models import BaseModel

    parts = cls.__module__.split(".")
    if parts[0] != "moto" or len(parts) < 2 or parts[1] not in WEAKLY_TRACKED_SERVICES:
        return _original("BaseModel", "__new__")(cls, *args, **kwargs)
    instance = super(BaseModel, cls).__new__(cls)  # type: ignore[misc]
    tracked = cls.__dict__.get("instances_tracked")
    if not isinstance(tracked, WeakInstances):
        # moto's reset puts a plain list back; from then on, weak again.
        tracked = WeakInstances(tracked or ())
        cls.instances_tracked = tracked  # type: ignore[attr-defined]
    tracked.append(instance)
    return instance


# -- SQS: counts only when asked, lazy receives, indexed receipt handles ---------------------------


def _count_messages(queue: Any) -> dict[str, int]:
    """The three counts of GetQueueAttributes, in one pass over the queue's messages."""
    from moto.core.utils import unix_time_millis

    now = unix_time_millis()
    visible = delayed = not_visible = 0
    for message in list(queue._messages):
        is_visible = now > message.visible_at
        is_delayed = now < message.delayed_until
        delayed += is_delayed
        not_visible += not is_visible
        visible += is_visible and not is_delayed
    return {
        "ApproximateNumberOfMessages": visible,
        "ApproximateNumberOfMessagesDelayed": delayed,
        "ApproximateNumberOfMessagesNotVisible": not_visible,
    }


def _queue_attributes(self: Any) -> dict[str, Any]:
    """``Queue.attributes`` without the counts: the queue's settings (what moto reads on sends)."""
    import json

    from moto.core.utils import camelcase_to_underscores

    result: dict[str, Any] = {}
    for attribute in self.BASE_ATTRIBUTES:
        if attribute not in COUNT_ATTRIBUTES:
            result[attribute] = getattr(self, camelcase_to_underscores(attribute))
    if self.fifo_queue:
        for attribute in self.FIFO_ATTRIBUTES:
            result[attribute] = getattr(self, camelcase_to_underscores(attribute))
    if self.kms_master_key_id:
        for attribute in self.KMS_ATTRIBUTES:
            result[attribute] = getattr(self, camelcase_to_underscores(attribute))
    if self.policy:
        result["Policy"] = self.policy
    if self.redrive_policy:
        result["RedrivePolicy"] = json.dumps(self.redrive_policy)
    for key in result:
        if isinstance(result[key], bool):
            result[key] = str(result[key]).lower()
    return result


def _get_queue_attributes(self: Any, queue_name: str, attribute_names: list[str]) -> dict[str, Any]:
    """moto's ``SQSBackend.get_queue_attributes``, counting messages once and only if asked."""
    from moto.sqs.exceptions import InvalidAttributeName

    queue = self.get_queue(queue_name)
    if not attribute_names:
        return {}
    valid_names = ["All", *queue.BASE_ATTRIBUTES, *queue.FIFO_ATTRIBUTES, *queue.KMS_ATTRIBUTES]
    invalid_name = next((name for name in attribute_names if name not in valid_names), None)
    if invalid_name or invalid_name == "":
        raise InvalidAttributeName(invalid_name)

    everything = "All" in attribute_names
    counts = _count_messages(queue) if everything or set(attribute_names) & set(COUNT_ATTRIBUTES) else {}
    settings = queue.attributes
    available = {**counts, **settings}  # moto lists the counts first
    if everything:
        return available
    return {name: available[name] for name in attribute_names if available.get(name) is not None}


def _is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
    from moto.core.utils import unix_time

    queue = self.get_queue(queue_name)
    retain_until = queue.message_retention_period + message.sent_timestamp / 1000
    return retain_until > unix_time()


class VisibleMessages:
    """A queue's visible, undelayed messages (moto's ``Queue.messages``), found as iterated.

    moto builds the whole list for a receive that takes the first ten, and on every wake-up of a
    long poll. Iterating this stops where the caller stops; ``len`` and truthiness count or look
    only as far as they need to.
    """

    __slots__ = ("_messages",)

    def __init__(self, messages: list[Any]) -> None:
        self._messages = messages

    def __iter__(self) -> Iterator[Any]:
        for message in self._messages:
            if message.visible and not message.delayed:
                yield message

    def __bool__(self) -> bool:
        return next(iter(self), None) is not None

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __getitem__(self, index: Any) -> Any:
        return list(self)[index]


def _queue_messages(self: Any) -> VisibleMessages:
    return VisibleMessages(self._messages)


#: Receipt handle -> the message it was issued for (moto keeps every handle a message had).
_receipts: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()


def _mark_received(self: Any, visibility_timeout: int | None = None) -> None:
    _original("Message", "mark_received")(self, visibility_timeout)
    _receipts[self.receipt_handle] = self


def _delete_message(self: Any, receipt_handle: str) -> None:
    """moto's ``Queue.delete_message``, finding the message by its receipt handle."""
    if receipt_handle in self.deleted_messages:
        return
    message = _receipts.get(receipt_handle)
    with self._messages_lock:
        try:
            if message is None:
                raise ValueError(receipt_handle)
            # Received messages are near the front: this stops early.
            self._messages.remove(message)
        except ValueError:
            # Not a handle this queue issued since the patch (or the message is gone): moto decides.
            _original("Queue", "delete_message")(self, receipt_handle)
            return
    self.pending_messages.discard(message)
    handles = message.all_receipt_handles
    self.deleted_messages.update(handles)
    for handle in handles:
        _receipts.pop(handle, None)


def _change_message_visibility(
    self: Any, queue_name: str, receipt_handle: str, visibility_timeout: int
) -> None:
    """moto's ``SQSBackend.change_message_visibility``, finding the message by its receipt handle."""
    from moto.core.utils import unix_time_millis
    from moto.sqs.exceptions import InvalidParameterValue

    queue = self.get_queue(queue_name)
    message = _receipts.get(receipt_handle)
    if message is None or message not in queue._messages:
        _original("SQSBackend", "change_message_visibility")(
            self, queue_name, receipt_handle, visibility_timeout
        )
        return
    given_visibility_timeout = unix_time_millis() + int(visibility_timeout) * 1000
    if given_visibility_timeout - message.sent_timestamp > 43200 * 1000:
        raise InvalidParameterValue(
            f"Value {visibility_timeout} for parameter VisibilityTimeout is invalid. Reason: Total "
            "VisibilityTimeout for the message is beyond the limit [43200 seconds]"
        )
    message.change_visibility(visibility_timeout)
    if message.visible and message in queue.pending_messages:
        queue.pending_messages.remove(message)


# -- DynamoDB Streams: iterators expire ------------------------------------------------------------

#: How long DynamoDB Streams honours a shard iterator.
ITERATOR_LIFETIME_S = 15 * 60


def _issued(backend: Any, arn: str) -> None:
    """Note an iterator handed out; forget those older than their lifetime."""
    issued = backend.__dict__.setdefault("_issued_iterators", collections.deque())
    now = time.monotonic()
    issued.append((now, arn))
    while issued and now - issued[0][0] > ITERATOR_LIFETIME_S:
        _, old = issued.popleft()
        backend.shard_iterators.pop(old, None)


def _get_shard_iterator(self: Any, *args: Any, **kwargs: Any) -> Any:
    iterator = _original("DynamoDBStreamsBackend", "get_shard_iterator")(self, *args, **kwargs)
    _issued(self, iterator.arn)
    return iterator


def _get_records(self: Any, iterator_arn: str, limit: int) -> dict[str, Any]:
    from moto.core.exceptions import JsonRESTError

    if iterator_arn not in self.shard_iterators:
        raise JsonRESTError(
            "ExpiredIteratorException",
            f"The shard iterator has expired (older than {ITERATOR_LIFETIME_S // 60} minutes) or is not one "
            "this stream handed out; get a new one with GetShardIterator",
        )
    result = _original("DynamoDBStreamsBackend", "get_records")(self, iterator_arn, limit)
    _issued(self, result["NextShardIterator"])
    return result


# -- SSM without EC2's tables ----------------------------------------------------------------------


class DeferredEc2Backends:
    """Stands for ``moto.ec2.ec2_backends`` in ``moto.ssm.models`` until SSM first needs EC2.

    ``moto.ssm.models`` imports ``moto.ec2`` at its top for one lookup (the instances a SendCommand
    targets); importing ``moto.ec2`` loads its region, zone, instance-type and image tables, about
    100 MB held for good by a process that only stores parameters. Upstream this is the import
    moved into ``Command._get_instance_ids_from_targets``.
    """

    def __getitem__(self, account_id: str) -> Any:
        from moto.ec2 import ec2_backends

        return ec2_backends[account_id]

    def __getattr__(self, name: str) -> Any:
        from moto.ec2 import ec2_backends

        return getattr(ec2_backends, name)


def _import_ssm_without_ec2() -> None:
    """Import ``moto.ssm.models`` with a stand-in for ``moto.ec2`` (nothing to do when either is
    imported already: then there is nothing to save)."""
    import importlib
    import sys
    import types

    if "moto.ssm.models" in sys.modules or "moto.ec2" in sys.modules:
        return
    stand_in = types.ModuleType("moto.ec2")
    stand_in.ec2_backends = DeferredEc2Backends()  # type: ignore[attr-defined]
    sys.modules["moto.ec2"] = stand_in
    try:
        importlib.import_module("moto.ssm.models")
    except ImportError:
        sys.modules.pop("moto.ssm.models", None)  # it needed more of moto.ec2: imported as moto does
    finally:
        if sys.modules.get("moto.ec2") is stand_in:
            del sys.modules["moto.ec2"]
        moto = sys.modules["moto"]
        if getattr(moto, "ec2", None) is stand_in:
            delattr(moto, "ec2")


# -- DynamoDB: items answered as moto holds them ---------------------------------------------------

#: The services whose JSON answers carry items as DynamoDB AttributeValues.
ATTRIBUTE_VALUE_SERVICES = frozenset({"dynamodb", "dynamodbstreams"})


class _NotAsHeld(Exception):
    """A value the short way does not take as it is: moto's own walk serializes it."""


def _attribute_value(serializer: Any, value: Any) -> Any:
    """An AttributeValue as moto's serializer writes it (strings as they are, blobs base64), made
    from moto's own JSON form of the attribute (``{"S": ...}``, ``{"M": {...}}``, ...) in one pass;
    anything else (another type, several or unknown members, a None) raises :class:`_NotAsHeld`."""
    if type(value) is not dict or len(value) != 1:
        raise _NotAsHeld
    ((kind, inner),) = value.items()
    if kind in ("S", "N"):
        if type(inner) is not str:
            raise _NotAsHeld
        return value
    if kind in ("BOOL", "NULL"):
        if type(inner) is not bool:
            raise _NotAsHeld
        return value
    if kind == "B":
        if type(inner) not in (str, bytes):
            raise _NotAsHeld
        return {"B": serializer._base64(inner)}
    if type(inner) is list:
        if kind in ("SS", "NS"):
            if any(type(v) is not str for v in inner):
                raise _NotAsHeld
            return value
        if kind == "BS":
            if any(type(v) not in (str, bytes) for v in inner):
                raise _NotAsHeld
            return {"BS": [serializer._base64(v) for v in inner]}
        if kind == "L":
            return {"L": [_attribute_value(serializer, v) for v in inner]}
    if kind == "M" and type(inner) is dict:
        return {"M": _attribute_map(serializer, inner)}
    raise _NotAsHeld


def _attribute_map(serializer: Any, value: dict[Any, Any]) -> dict[str, Any]:
    out = {}
    for name, attribute in value.items():
        if type(name) is not str:
            raise _NotAsHeld
        out[name] = _attribute_value(serializer, attribute)
    return out


def _serialize_type_map(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
    """moto's JSON serializer walks every attribute of every item it answers through the
    AttributeValue shape (a picker with alias lookups per member, a path kept per level), several
    milliseconds per item; patched: a map of AttributeValues (an item, a key, a stream image) in
    moto's own JSON form is written in one pass, to the same JSON; any other value goes moto's way."""
    if (
        type(value) is dict
        and getattr(shape.value, "name", None) == "AttributeValue"
        and self.operation_model.service_model.service_name in ATTRIBUTE_VALUE_SERVICES
    ):
        try:
            items = _attribute_map(self, value)
        except _NotAsHeld:
            pass
        else:
            self._default_serialize(serialized, items, shape, key)
            return
    _original("BaseJSONSerializer", "_serialize_type_map")(self, serialized, value, shape, key)


# -- install / uninstall ---------------------------------------------------------------------------


def _targets() -> dict[str, Any]:
    from moto.core.common_models import BaseModel
    from moto.core.serialize import BaseJSONSerializer
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import StreamRecord, StreamShard, Table
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend
    from moto.sqs.models import Message, Queue, SQSBackend

    return {
        "BaseModel": BaseModel,
        "BaseJSONSerializer": BaseJSONSerializer,
        "DynamoDBBackend": DynamoDBBackend,
        "Table": Table,
        "StreamShard": StreamShard,
        "StreamRecord": StreamRecord,
        "DynamoDBStreamsBackend": DynamoDBStreamsBackend,
        "Message": Message,
        "Queue": Queue,
        "SQSBackend": SQSBackend,
    }


def _patches() -> list[tuple[str, str, Any]]:
    return [
        ("DynamoDBBackend", "transact_write_items", _transact_write_items),
        ("DynamoDBBackend", "update_item", _update_item),
        ("Table", "query", _query),
        ("Table", "all_items", _all_items),
        ("Table", "put_item", _table_put_item),
        ("Table", "delete_item", _table_delete_item),
        ("StreamShard", "add", _stream_add),
        ("StreamRecord", "__init__", _stream_record_init),
        ("StreamRecord", "record", property(_get_stream_record, _set_stream_record)),
        ("DynamoDBStreamsBackend", "get_shard_iterator", _get_shard_iterator),
        ("DynamoDBStreamsBackend", "get_records", _get_records),
        ("BaseModel", "__new__", staticmethod(_model_new)),
        ("BaseJSONSerializer", "_serialize_type_map", _serialize_type_map),
        ("Queue", "attributes", property(_queue_attributes)),
        ("Queue", "messages", property(_queue_messages)),
        ("Queue", "delete_message", _delete_message),
        ("Message", "mark_received", _mark_received),
        ("SQSBackend", "get_queue_attributes", _get_queue_attributes),
        (
            "SQSBackend",
            "is_message_valid_based_on_retention_period",
            _is_message_valid_based_on_retention_period,
        ),
        ("SQSBackend", "change_message_visibility", _change_message_visibility),
    ]


def _original(owner: str, name: str) -> Any:
    return _originals[(owner, name)]


def install() -> bool:
    """Patch moto in this process (idempotent); True if this call patched."""
    with _lock:
        if _applied:
            return False
        _import_ssm_without_ec2()
        targets = _targets()
        _index_partitions.clear()
        for owner, name, replacement in _patches():
            raw = vars(targets[owner]).get(name)  # None: an attribute the class lacks (added)
            # The function to call (a staticmethod's); _applied keeps what the class held, to put back.
            _originals[(owner, name)] = raw.__func__ if isinstance(raw, staticmethod) else raw
            _applied.replace(targets[owner], name, replacement)
        return True


def uninstall() -> None:
    """Put moto's own code back (instances tracked weakly so far stay so until moto's reset)."""
    with _lock:
        if _applied:
            _unpack_stream_records()
        _applied.restore()
        _index_partitions.clear()  # moto's own writes would not keep them


def installed() -> bool:
    return bool(_applied)
