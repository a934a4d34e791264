"""A second protobuf implementation for tests/tiller.rs: Python's protobuf
runtime, with code that grpcio-tools' protoc generates from proto/hapi.

Usage: python3 tests/tiller/hapi_wire.py GENERATED_DIR < cases.json > results.json

Each case is {"type": "hapi.release.Release", "plain": {...}} (encode the
plain form, deterministically) or {"type": ..., "bytes": BASE64} (decode,
report the plain form, whether any field was not understood, and the bytes
encoded again). The plain form: field names as in the .proto file, enums by
name, bytes in base64, 64-bit integers as numbers, maps as objects,
messages (google.protobuf.Timestamp and Any included) as objects.
"""

import base64
import importlib
import json
import sys

sys.path.insert(0, sys.argv[1])

from google.protobuf import descriptor, descriptor_pool, message_factory  # noqa: E402

MODULES = [
    "hapi.chart.chart_pb2",
    "hapi.chart.config_pb2",
    "hapi.chart.metadata_pb2",
    "hapi.chart.template_pb2",
    "hapi.release.hook_pb2",
    "hapi.release.info_pb2",
    "hapi.release.release_pb2",
    "hapi.release.status_pb2",
    "hapi.release.test_run_pb2",
    "hapi.release.test_suite_pb2",
    "hapi.services.tiller_pb2",
    "hapi.version.version_pb2",
]
for m in MODULES:
    importlib.import_module(m)

FD = descriptor.FieldDescriptor


def message_class(name):
    desc = descriptor_pool.Default().FindMessageTypeByName(name)
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory().GetPrototype(desc)


def is_repeated(field):
    if hasattr(field, "is_repeated"):
        return field.is_repeated
    return field.label == FD.LABEL_REPEATED


def is_map(field):
    return (
        field.type == FD.TYPE_MESSAGE
        and field.message_type.GetOptions().map_entry
    )


def scalar_to_plain(field, value):
    if field.type == FD.TYPE_BYTES:
        return base64.b64encode(value).decode()
    if field.type == FD.TYPE_ENUM:
        v = field.enum_type.values_by_number.get(value)
        return v.name if v is not None else value
    if field.type == FD.TYPE_MESSAGE:
        return to_plain(value)
    return value


def to_plain(msg):
    out = {}
    for field, value in msg.ListFields():
        if is_map(field):
            vf = field.message_type.fields_by_name["value"]
            out[field.name] = {k: scalar_to_plain(vf, v) for k, v in value.items()}
        elif is_repeated(field):
            out[field.name] = [scalar_to_plain(field, v) for v in value]
        else:
            out[field.name] = scalar_to_plain(field, value)
    return out


def scalar_from_plain(field, value):
    if field.type == FD.TYPE_BYTES:
        return base64.b64decode(value)
    if field.type == FD.TYPE_ENUM and isinstance(value, str):
        return field.enum_type.values_by_name[value].number
    return value


def from_plain(msg, plain):
    for name, value in plain.items():
        field = msg.DESCRIPTOR.fields_by_name[name]
        target = getattr(msg, name)
        if is_map(field):
            vf = field.message_type.fields_by_name["value"]
            for k, v in value.items():
                if vf.type == FD.TYPE_MESSAGE:
                    from_plain(target[k], v)
                else:
                    target[k] = scalar_from_plain(vf, v)
        elif is_repeated(field):
            for v in value:
                if field.type == FD.TYPE_MESSAGE:
                    from_plain(target.add(), v)
                else:
                    target.append(scalar_from_plain(field, v))
        elif field.type == FD.TYPE_MESSAGE:
            target.SetInParent()
            from_plain(target, value)
        else:
            setattr(msg, name, scalar_from_plain(field, value))
    return msg


def has_unknown(msg):
    copy = type(msg)()
    copy.CopyFrom(msg)
    copy.DiscardUnknownFields()
    return copy.ByteSize() != msg.ByteSize()


def run(case):
    cls = message_class(case["type"])
    if "plain" in case:
        msg = from_plain(cls(), case["plain"])
        return {"bytes": base64.b64encode(msg.SerializeToString(deterministic=True)).decode()}
    msg = cls()
    msg.ParseFromString(base64.b64decode(case["bytes"]))
    return {
        "plain": to_plain(msg),
        "unknown": has_unknown(msg),
        "bytes": base64.b64encode(msg.SerializeToString(deterministic=True)).decode(),
    }


def main():
    cases = json.load(sys.stdin)
    results = [run(c) for c in cases]
    json.dump(results, sys.stdout)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
