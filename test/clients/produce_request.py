#!/usr/bin/python3
"""Submit one Arbiter remediation request from Python, as any Confluent-compatible client would.

Uses only Debian's packages (scripts/install-system-deps.sh): confluent-kafka (librdkafka) for the
producer and the registry client, Apache Avro for the body. confluent_kafka's own Avro serializer
needs fastavro, which Debian does not package, so the Confluent framing is done here by hand:

    b'\\x00' + schema_id.to_bytes(4, 'big') + avro_binary_body

The record is keyed by the resource ARN unless --key is given: this client knows nothing of
Arbiter's scope rules, and librdkafka's default partitioner (consistent_random, CRC32) differs
from the Java one (murmur2). Either way the worker re-routes the record to its scope's partition.

Prints one JSON line: {"requestId", "schemaId", "partition", "offset", "topic", "key"}.
"""

import argparse
import base64
import datetime
import io
import json
import sys
import uuid
from pathlib import Path

try:
    import avro.errors
    import avro.io
    import avro.schema
    from confluent_kafka import KafkaException, Producer
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    from confluent_kafka.schema_registry.error import SchemaRegistryError
except ImportError as error:  # pragma: no cover - environment problem, reported plainly
    sys.stderr.write(
        f"produce_request.py: missing Python dependency ({error}); "
        "run scripts/install-system-deps.sh (python3-confluent-kafka, python3-avro, python3-requests)\n"
    )
    sys.exit(3)

DEFAULT_SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "remediation-request.avsc"
MAGIC_BYTE = b"\x00"
# Confluent registry error codes: subject not found, schema not found.
NOT_FOUND_CODES = {40401, 40403}


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Produce one Arbiter remediation request (Confluent-framed Avro).")
    parser.add_argument("--brokers", required=True, help="bootstrap servers, e.g. 127.0.0.1:9092")
    parser.add_argument("--registry", required=True, help="Confluent-compatible registry URL, e.g. http://127.0.0.1:8081/apis/ccompat/v7")
    parser.add_argument("--topic", required=True, help="requests topic, e.g. arbiter.requests (value subject: <topic>-value)")
    parser.add_argument("--agent", required=True, help="agentId")
    parser.add_argument("--arn", required=True, help="resourceArn")
    parser.add_argument("--action", required=True, help="restart, rollback, hotfix, deploy, scale, drain, terminate")
    parser.add_argument("--param", action="append", default=[], metavar="K=V", help="a params entry; repeatable")
    parser.add_argument("--request-id", help="requestId (a UUID); default: a new uuid4")
    parser.add_argument("--key", help="Kafka record key; default: the ARN itself (Arbiter expects the scope, and re-routes otherwise)")
    parser.add_argument("--partitioner", help="librdkafka partitioner, e.g. murmur2_random (Java-compatible); default: librdkafka's consistent_random")
    parser.add_argument("--reason", help="optional reason")
    parser.add_argument("--schema", default=str(DEFAULT_SCHEMA), help="path of remediation-request.avsc")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for delivery")
    parser.add_argument("--sign-key", help="PEM file of the agent's Ed25519 private key: sign the value (header arbiter-signature)")
    args = parser.parse_args(argv)

    params = {}
    for item in args.param:
        if "=" not in item:
            parser.error(f"--param expects K=V, got {item!r}")
        key, value = item.split("=", 1)
        params[key] = value
    args.params = params

    if args.request_id is None:
        args.request_id = str(uuid.uuid4())
    else:
        try:
            args.request_id = str(uuid.UUID(args.request_id))
        except ValueError:
            parser.error(f"--request-id must be a UUID, got {args.request_id!r}")
    return args


def schema_id_for(registry_url, subject, schema_text):
    """The id of this schema under the subject: looked up first, registered if the subject lacks it."""
    client = SchemaRegistryClient({"url": registry_url})
    schema = Schema(schema_text, "AVRO")
    try:
        return client.lookup_schema(subject, schema).schema_id
    except SchemaRegistryError as error:
        if error.error_code not in NOT_FOUND_CODES:
            raise
    return client.register_schema(subject, schema)


def encode(parsed_schema, schema_id, datum):
    body = io.BytesIO()
    avro.io.DatumWriter(parsed_schema).write(datum, avro.io.BinaryEncoder(body))
    return MAGIC_BYTE + schema_id.to_bytes(4, "big") + body.getvalue()


def main(argv):
    args = parse_args(argv)
    schema_text = Path(args.schema).read_text(encoding="utf-8")
    parsed_schema = avro.schema.parse(schema_text)
    subject = f"{args.topic}-value"  # Confluent TopicNameStrategy
    schema_id = schema_id_for(args.registry, subject, schema_text)

    request = {
        "requestId": args.request_id,
        "agentId": args.agent,
        "resourceArn": args.arn,
        "action": args.action,
        "params": args.params,
        "expectedVersion": None,
        "dependsOn": [],
        "planId": None,
        "step": None,
        "deadline": None,
        "reason": args.reason,
        "incidentId": None,
        # timestamp-millis: Apache Avro encodes an aware datetime as epoch milliseconds.
        "requestedAt": datetime.datetime.now(datetime.timezone.utc),
    }
    value = encode(parsed_schema, schema_id, request)
    key = args.key if args.key is not None else args.arn
    headers = {}
    if args.sign_key:
        # Ed25519 over the value bytes exactly as produced (framing included), base64 in a header.
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        private_key = load_pem_private_key(Path(args.sign_key).read_bytes(), password=None)
        headers["arbiter-signature"] = base64.b64encode(private_key.sign(value))

    delivered = {}

    def on_delivery(error, message):
        if error is not None:
            delivered["error"] = str(error)
        else:
            delivered["partition"] = message.partition()
            delivered["offset"] = message.offset()

    # librdkafka defaults: partitioner=consistent_random (CRC32 of the key), not Java's murmur2.
    config = {"bootstrap.servers": args.brokers, "acks": "all", "client.id": f"python-{args.agent}"}
    if args.partitioner:
        config["partitioner"] = args.partitioner
    producer = Producer(config)
    producer.produce(args.topic, key=key.encode("utf-8"), value=value, headers=headers, on_delivery=on_delivery)
    remaining = producer.flush(args.timeout)
    if remaining > 0 or "error" in delivered or "partition" not in delivered:
        sys.stderr.write(f"produce_request.py: delivery failed: {delivered.get('error', f'{remaining} message(s) not delivered within {args.timeout}s')}\n")
        return 1

    print(json.dumps({
        "requestId": args.request_id,
        "schemaId": schema_id,
        "partition": delivered["partition"],
        "offset": delivered["offset"],
        "topic": args.topic,
        "key": key,
    }))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (SchemaRegistryError, KafkaException, OSError, avro.errors.AvroException) as error:
        sys.stderr.write(f"produce_request.py: {type(error).__name__}: {error}\n")
        sys.exit(1)
