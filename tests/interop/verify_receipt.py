#!/usr/bin/env python3
"""An independent Vouch receipt verifier, written from docs/protocol.md alone.

It shares no code with the Rust implementation: tensor encodings and commitments use hashlib and
numpy, the EIP-712 digest and signer recovery use eth-account (a wallet library), and the trace
root uses a from-the-RFC Merkle tree hash. CI runs it on the spec's test vectors and on receipts
the `vouch` binary makes.

Usage:
  verify_receipt.py vectors docs/protocol.md
  verify_receipt.py receipt RECEIPT.json --model MODEL.onnx --input INPUTS.json [--outputs OUT.json]
                            [--trace TRACE.json]
Exit status 0 when every check passes, 1 otherwise.

Requirements: pip install numpy eth-account
"""
import argparse
import base64
import hashlib
import json
import struct
import sys

import numpy as np
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

DTYPES = {  # name -> (ONNX code, numpy dtype or None for strings)
    "float32": (1, "<f4"), "uint8": (2, "u1"), "int8": (3, "i1"), "uint16": (4, "<u2"),
    "int16": (5, "<i2"), "int32": (6, "<i4"), "int64": (7, "<i8"), "string": (8, None),
    "bool": (9, "u1"), "float16": (10, "<f2"), "float64": (11, "<f8"), "uint32": (12, "<u4"),
    "uint64": (13, "<u8"),
}
SPECIAL = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def tagged(tag, msg):
    return hashlib.sha256(tag.encode() + b"\x00" + msg).digest()


def model_id(data):
    digest = hashlib.sha256(data).digest()
    raw = bytes([0x01, 0x55, 0x12, 0x20]) + digest
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


def flatten(v):
    if isinstance(v, list):
        out = []
        for x in v:
            out.extend(flatten(x))
        return out
    return [v]


def encode_tensor(t):
    """Canonical encoding (protocol.md §2.2) of a tensor in its JSON form (with dtype)."""
    name = t["dtype"]
    code, npdt = DTYPES[name]
    shape = t["shape"]
    head = struct.pack("<II", code, len(shape)) + b"".join(struct.pack("<Q", d) for d in shape)
    if "data_base64" in t:
        return head + base64.b64decode(t["data_base64"])
    values = flatten(t["data"])
    assert len(values) == int(np.prod(shape, dtype=np.int64)), "element count"
    if npdt is None:
        return head + b"".join(struct.pack("<I", len(s.encode())) + s.encode() for s in values)
    if name == "bool":
        values = [1 if v else 0 for v in values]
    elif name.startswith("float"):
        values = [SPECIAL[v] if isinstance(v, str) else v for v in values]
    return head + np.array(values, dtype=npdt).tobytes()


def tensor_commitment(t):
    return tagged("vouch/tensor/v1", encode_tensor(t))


def set_commitment(named):
    entries = sorted(named.items(), key=lambda kv: kv[0].encode())
    msg = struct.pack("<I", len(entries))
    for name, t in entries:
        msg += struct.pack("<I", len(name.encode())) + name.encode() + tensor_commitment(t)
    return tagged("vouch/tensor-set/v1", msg)


def mth(leaf_datas):
    """RFC 9162 §2.1.1 Merkle tree hash, recursively, straight from the definition."""
    n = len(leaf_datas)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaf_datas[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaf_datas[:k]) + mth(leaf_datas[k:])).digest()


def hx(b):
    return "0x" + b.hex()


def typed_data(r):
    """The EIP-712 typed data of protocol.md §6.1, built from the receipt's JSON form."""
    raw = base64.b32decode(r["model"][1:].upper() + "=" * (-len(r["model"][1:]) % 8))
    assert raw[:4] == bytes([0x01, 0x55, 0x12, 0x20]), "model id is a CIDv1 raw sha2-256"
    return {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"}],
            "Receipt": [
                {"name": "modelDigest", "type": "bytes32"},
                {"name": "inputCommitment", "type": "bytes32"},
                {"name": "outputCommitment", "type": "bytes32"},
                {"name": "traceRoot", "type": "bytes32"},
                {"name": "traceSize", "type": "uint32"},
                {"name": "engine", "type": "string"},
                {"name": "profile", "type": "string"},
                {"name": "operator", "type": "address"},
                {"name": "timestamp", "type": "uint64"},
                {"name": "nonce", "type": "bytes32"},
            ],
        },
        "primaryType": "Receipt",
        "domain": {"name": "Vouch", "version": "1"},
        "message": {
            "modelDigest": raw[4:],
            "inputCommitment": bytes.fromhex(r["input_commitment"][2:]),
            "outputCommitment": bytes.fromhex(r["output_commitment"][2:]),
            "traceRoot": bytes.fromhex(r["trace_root"][2:]),
            "traceSize": r["trace_size"],
            "engine": r["engine"],
            "profile": r["profile"],
            "operator": r["operator"],
            "timestamp": r["timestamp"],
            "nonce": bytes.fromhex(r["nonce"][2:]),
        },
    }


def publish_typed_data(m):
    """The EIP-712 typed data of protocol.md §7, from a manifest's JSON form."""
    raw = base64.b32decode(m["model"][1:].upper() + "=" * (-len(m["model"][1:]) % 8))
    return {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"}],
            "Publish": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "modelDigest", "type": "bytes32"},
                {"name": "description", "type": "string"},
                {"name": "task", "type": "string"},
                {"name": "license", "type": "string"},
                {"name": "tags", "type": "string[]"},
                {"name": "publisher", "type": "address"},
                {"name": "timestamp", "type": "uint64"},
                {"name": "nonce", "type": "bytes32"},
            ],
        },
        "primaryType": "Publish",
        "domain": {"name": "Vouch", "version": "1"},
        "message": {**{k: v for k, v in m.items() if k != "model"},
                    "modelDigest": raw[4:], "nonce": bytes.fromhex(m["nonce"][2:])},
    }


class Checks:
    def __init__(self):
        self.failed = 0

    def eq(self, what, got, want):
        ok = got == want
        self.failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {what}" + ("" if ok else f": got {got}, want {want}"))


def check_receipt(c, r, model_bytes=None, inputs=None, outputs=None, trace=None):
    assert r["vouch_receipt"] == 1
    signable = encode_typed_data(full_message=typed_data(r))
    signer = Account.recover_message(signable, signature=bytes.fromhex(r["signature"][2:]))
    c.eq("signature recovers the operator (eth-account)", signer, r["operator"])
    s = int(r["signature"][66:130], 16)
    c.eq("signature is low-s", s <= 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0, True)
    if model_bytes is not None:
        c.eq("model id", model_id(model_bytes), r["model"])
    if inputs is not None:
        c.eq("input commitment", hx(set_commitment(inputs)), r["input_commitment"])
    if outputs is not None:
        c.eq("output commitment", hx(set_commitment(outputs)), r["output_commitment"])
    if trace is not None:
        leaves = [bytes.fromhex(n["hash"][2:]) for n in trace]
        c.eq("trace root over the node hashes", hx(mth(leaves)), r["trace_root"])
        c.eq("trace size", len(leaves), r["trace_size"])


def vectors(path):
    doc = open(path, encoding="utf-8").read()
    begin = doc.index("<!-- vectors:begin -->\n```json\n") + len("<!-- vectors:begin -->\n```json\n")
    v = json.loads(doc[begin:doc.index("\n```\n<!-- vectors:end -->")])
    c = Checks()
    for m in v["model_ids"]:
        c.eq(f"model id of {m['bytes_utf8']!r}", model_id(m["bytes_utf8"].encode()), m["id"])
    for i, t in enumerate(v["tensors"]):
        c.eq(f"tensors[{i}] encoding", encode_tensor(t["tensor"]).hex(), t["encoding"])
        c.eq(f"tensors[{i}] commitment", hx(tensor_commitment(t["tensor"])), t["commitment"])
    named = {"b": v["tensors"][0]["tensor"], "a": v["tensors"][1]["tensor"]}
    c.eq("tensor set commitment", hx(set_commitment(named)), v["tensor_set"]["commitment"])
    r = v["receipt"]
    signed = r["signed"]
    signable = encode_typed_data(full_message=typed_data(signed))
    c.eq("EIP-712 domain separator", hx(signable.header), v["eip712"]["domain_separator"])
    c.eq("EIP-712 struct hash", hx(signable.body), r["struct_hash"])
    c.eq("EIP-712 signing hash", hx(keccak(b"\x19\x01" + signable.header + signable.body)), r["signing_hash"])
    p = v["publish"]
    manifest = p["signed"]["manifest"]
    msg = encode_typed_data(full_message=publish_typed_data(manifest))
    c.eq("publish manifest struct hash", hx(msg.body), p["struct_hash"])
    c.eq("publish manifest signing hash", hx(keccak(b"\x19\x01" + msg.header + msg.body)), p["signing_hash"])
    signer = Account.recover_message(msg, signature=bytes.fromhex(p["signed"]["signature"][2:]))
    c.eq("publish manifest signed by its publisher (eth-account)", signer, manifest["publisher"])
    root = path.rsplit("docs/", 1)[0]
    inputs = json.load(open(root + r["input_file"]))
    check_receipt(c, signed, open(root + r["model_file"], "rb").read(), inputs, r["outputs"], r["trace_nodes"])
    return c


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    pv = sub.add_parser("vectors")
    pv.add_argument("protocol_md")
    pr = sub.add_parser("receipt")
    pr.add_argument("receipt")
    pr.add_argument("--model")
    pr.add_argument("--input")
    pr.add_argument("--outputs")
    pr.add_argument("--trace")
    a = p.parse_args()
    if a.cmd == "vectors":
        c = vectors(a.protocol_md)
    else:
        c = Checks()
        r = json.load(open(a.receipt))
        check_receipt(
            c, r,
            open(a.model, "rb").read() if a.model else None,
            json.load(open(a.input)) if a.input else None,
            json.load(open(a.outputs)) if a.outputs else None,
            json.load(open(a.trace))["nodes"] if a.trace else None,
        )
    print(f"{'all checks passed' if not c.failed else f'{c.failed} check(s) FAILED'}")
    sys.exit(1 if c.failed else 0)


if __name__ == "__main__":
    main()
