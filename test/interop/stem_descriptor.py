#!/usr/bin/python3
"""Independent v3 descriptor cross-check with stem 1.8.1 + python3-cryptography (Debian).

Used by test/unit/stem-crosscheck.test.ts. Reads one JSON array of requests on stdin and
writes one JSON array of responses (same order) on stdout. Byte strings are lowercase hex.

Requests:
  {"op": "parse", "descriptor": <text>, "address": <onion address>,
   "identity_public_key": <hex>, "blinding_nonce": <hex, optional>}
      stem parses the descriptor with validate=True (this checks the descriptor signature
      with the signing-key certificate's certified key), decrypts both layers with the
      address (HiddenServiceDescriptorV3.decrypt) and lists what it found. Certificate
      signatures, which stem does not check, are checked here with python3-cryptography;
      the ed25519 form of each enc key (prop 228 appendix A, sign bit 0) is computed here
      with plain integer arithmetic; with blinding_nonce, stem's _blinded_pubkey gives the
      blinded key to compare with the certificate's.
  {"op": "create", "identity_seed": <hex 32>, "signing_seed": <hex 32>,
   "blinding_nonce": <hex 32>, "revision_counter": <int>, "expiration_unix": <int>,
   "intro_signing": "descriptor" | "random", "inner_attr": {<keyword>: <value>} (optional),
   "intro_points": [{"link_specifiers": [{"type": n, "value": hex}], "onion_key": hex,
                     "enc_key": hex, "auth_key": hex}]}
      stem builds a descriptor with HiddenServiceDescriptorV3.content(...). With
      intro_signing "descriptor" the intro-point certificates are signed by the descriptor
      signing key (what tor requires); with "random" stem's default is kept (a fresh random
      key per intro point, which tor rejects).

Any failure of a request is reported as {"ok": false, "error": "<ExceptionType>: <message>"}.
"""
import base64
import binascii
import datetime
import hashlib
import json
import sys
import traceback

import stem.client.datatype as datatype
import stem.util
from stem.descriptor.hidden_service import (
    HiddenServiceDescriptorV3,
    InnerLayer,
    IntroductionPointV3,
    OuterLayer,
    _blinded_pubkey,
)

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

P = 2**255 - 19


def hx(b):
    return None if b is None else binascii.hexlify(b).decode()


def unhex(s):
    return binascii.unhexlify(s)


def ed25519_from_curve25519(u_bytes, sign_bit=0):
    u = int.from_bytes(u_bytes, 'little') & ((1 << 255) - 1)
    y = ((u - 1) * pow(u + 1, P - 2, P)) % P
    out = bytearray(y.to_bytes(32, 'little'))
    out[31] = (out[31] & 0x7F) | (sign_bit << 7)
    return bytes(out)


def cert_info(cert, expected_signer=None):
    """A stem Ed25519CertificateV1 as JSON; the signature is checked here with cryptography."""
    packed = cert.pack()
    body, sig = packed[:-64], packed[-64:]
    signer = cert.signing_key()
    key = expected_signer if expected_signer is not None else signer
    sig_ok = None
    if key is not None:
        try:
            Ed25519PublicKey.from_public_bytes(key).verify(sig, body)
            sig_ok = True
        except (InvalidSignature, ValueError):
            sig_ok = False
    return {
        'type': cert.type_int,
        'expiration_hours': int(stem.util.datetime_to_unix(cert.expiration) // 3600),
        'key': hx(cert.key),
        'signing_key': hx(signer),
        'signature_valid': sig_ok,
        'extensions': [{'type': int(e.type), 'flags': e.flag_int, 'data': hx(e.data)} for e in cert.extensions],
    }


def crosscert_info(key_pem, cert_pem):
    """tor's RSA->ed25519 cross-certificate: ed_key(32) | expiration hours(4) | sig_len(1) | sig."""
    key = serialization.load_pem_public_key(key_pem.encode())
    body = base64.b64decode(''.join(cert_pem.strip().split('\n')[1:-1]))
    sig = body[37:37 + body[36]]
    digest = hashlib.sha256(b'Tor TLS RSA/Ed25519 cross-certificate' + body[:36]).digest()
    try:
        recovered = key.recover_data_from_signature(sig, padding.PKCS1v15(), None)
    except InvalidSignature:
        recovered = None
    return {
        'key_bits': key.key_size,
        'exponent': key.public_numbers().e,
        'ed_key': hx(body[:32]),
        'expiration_hours': int.from_bytes(body[32:36], 'big'),
        'signature_valid': recovered == digest,
        'length_ok': len(body) == 37 + body[36],
    }


def link_specifier_info(ls):
    out = {'type': ls.type, 'value': hx(ls.value)}
    if isinstance(ls, (datatype.LinkByIPv4, datatype.LinkByIPv6)):
        out['address'] = ls.address
        out['port'] = ls.port
    return out


def op_parse(req):
    text = req['descriptor']
    res = {'ok': True}
    try:
        desc = HiddenServiceDescriptorV3(text.encode(), validate=True)
        res['stem_signature_valid'] = True
    except ValueError as e:
        # validate=True raises on a bad signature; retry without validation to still decrypt.
        res['stem_signature_valid'] = False
        res['stem_signature_error'] = str(e)
        desc = HiddenServiceDescriptorV3(text.encode(), validate=False)
    blinded = desc.signing_cert.signing_key()
    res['outer'] = {
        'version': desc.version,
        'lifetime': desc.lifetime,
        'revision_counter': str(desc.revision_counter),
        'signature': hx(stem.util.str_tools._decode_b64(desc.signature.encode())),
        'signing_cert': cert_info(desc.signing_cert),
    }
    if req.get('blinding_nonce'):
        res['stem_blinded_key'] = hx(_blinded_pubkey(unhex(req['identity_public_key']), unhex(req['blinding_nonce'])))
    res['identity_from_address'] = hx(HiddenServiceDescriptorV3.identity_key_from_address(req['address']))
    inner = desc.decrypt(req['address'])
    outer_layer = inner.outer
    res['middle'] = {
        'auth_type': outer_layer.auth_type,
        'ephemeral_key': hx(base64.b64decode(outer_layer.ephemeral_key)),
        'auth_clients': len(outer_layer.clients),
    }
    signing_key = desc.signing_cert.key
    intro_points = []
    for ip in inner.introduction_points:
        enc_raw = base64.b64decode(ip.enc_key_raw) if ip.enc_key_raw else None
        intro_points.append({
            'link_specifiers': [link_specifier_info(ls) for ls in ip.link_specifiers],
            'onion_key': hx(base64.b64decode(ip.onion_key_raw)) if ip.onion_key_raw else None,
            'auth_key': hx(ip.auth_key_cert.key),
            'enc_key': hx(enc_raw),
            'enc_key_ed25519': hx(ed25519_from_curve25519(enc_raw)) if enc_raw else None,
            'auth_key_cert': cert_info(ip.auth_key_cert, signing_key),
            'enc_key_cert': cert_info(ip.enc_key_cert, signing_key),
            'legacy_key': ip.legacy_key_raw,
            'legacy_key_cert': ip.legacy_key_cert,
            'legacy_crosscert': crosscert_info(ip.legacy_key_raw, ip.legacy_key_cert) if ip.legacy_key_raw else None,
        })
    res['inner'] = {
        'formats': inner.formats,
        'intro_auth': inner.intro_auth,
        'is_single_service': inner.is_single_service,
        'unrecognized_lines': inner.get_unrecognized_lines(),
        'introduction_points': intro_points,
    }
    res['blinded_key'] = hx(blinded)
    return res


def op_create(req):
    identity = Ed25519PrivateKey.from_private_bytes(unhex(req['identity_seed']))
    signing = Ed25519PrivateKey.from_private_bytes(unhex(req['signing_seed']))
    expiration = datetime.datetime.utcfromtimestamp(req['expiration_unix'])
    ips = []
    for ip in req['intro_points']:
        specs = []
        for ls in ip['link_specifiers']:
            value = unhex(ls['value'])
            spec, rest = datatype.LinkSpecifier.pop(bytes([ls['type'], len(value)]) + value)
            assert rest == b''
            specs.append(spec)
        kwargs = {}
        if req['intro_signing'] == 'descriptor':
            kwargs['signing_key'] = signing
        ips.append(IntroductionPointV3.create_for_link_specifiers(
            specs,
            expiration=expiration,
            onion_key=unhex(ip['onion_key']),
            enc_key=unhex(ip['enc_key']),
            auth_key=unhex(ip['auth_key']),
            **kwargs,
        ))
    inner = InnerLayer.create(attr=req.get('inner_attr') or None, introduction_points=ips)
    content = HiddenServiceDescriptorV3.content(
        inner_layer=inner,
        identity_key=identity,
        signing_key=signing,
        revision_counter=req['revision_counter'],
        blinding_nonce=unhex(req['blinding_nonce']),
    )
    address = HiddenServiceDescriptorV3.address_from_identity_key(identity)
    return {'ok': True, 'descriptor': content.decode(), 'address': address, 'inner_plaintext': inner.get_bytes().decode()}


OPS = {'parse': op_parse, 'create': op_create}


def main():
    reqs = json.load(sys.stdin)
    out = []
    for req in reqs:
        try:
            out.append(OPS[req['op']](req))
        except Exception as e:  # reported to the test, which decides
            out.append({'ok': False, 'error': '%s: %s' % (type(e).__name__, e), 'trace': traceback.format_exc()})
    json.dump(out, sys.stdout)


if __name__ == '__main__':
    main()
