"""Just enough of the Kubernetes protobuf encoding for what kubectl sends the local server.

kubectl 1.32 sends `application/vnd.kubernetes.protobuf` bodies for `certificate approve/deny`
(the CSR /approval update). The envelope is the magic `k8s\\0` and a runtime.Unknown message
whose `raw` field holds the object; we decode the wire format generically and pick the fields
of CertificateSigningRequest (k8s.io/api/certificates/v1/generated.proto) the server uses.
"""

from __future__ import annotations

MAGIC = b"k8s\x00"


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(data: bytes) -> dict[int, list]:
    """field number -> values (ints for varints, bytes for length-delimited)."""
    out: dict[int, list] = {}
    pos = 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        out.setdefault(number, []).append(value)
    return out


def _text(f: dict[int, list], number: int) -> str:
    return f.get(number, [b""])[0].decode()


def decode_csr(body: bytes) -> dict:
    """The JSON-shaped CSR (metadata name/resourceVersion, status conditions/certificate)."""
    if not body.startswith(MAGIC):
        raise ValueError("not a Kubernetes protobuf envelope")
    raw = fields(fields(body[len(MAGIC):])[2][0])
    meta = fields(raw.get(1, [b""])[0])
    status = fields(raw.get(3, [b""])[0])
    conditions = []
    for blob in status.get(1, []):
        c = fields(blob)
        conditions.append({"type": _text(c, 1), "reason": _text(c, 2),
                           "message": _text(c, 3), "status": _text(c, 6) or "True"})
    obj = {"metadata": {"name": _text(meta, 1), "resourceVersion": _text(meta, 6)},
           "status": {"conditions": conditions}}
    if status.get(2):
        import base64

        obj["status"]["certificate"] = base64.b64encode(status[2][0]).decode()
    return obj
