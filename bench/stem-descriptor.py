#!/usr/bin/python3
"""stem 1.8.1 side of the descriptor benchmark (bench/descriptor.ts runs it with /usr/bin/python3).

Reads one JSON object on stdin:
  {"identity_seed": hex 32, "blinding_nonce": hex 32 (the unclamped blinding parameter h),
   "revision_counter": int, "address": onion address, "descriptor": text to decode,
   "intro_points": [{"link_specifiers": [{"type": n, "value": hex}], "onion_key": hex,
                     "enc_key": hex, "auth_key": hex}],
   "rounds": int, "per_block": int}
and writes one JSON object on stdout.

The workload is torbalance's, as stem (what Onionbalance builds with) does it:
- build: a fresh descriptor signing key, the intro points re-certified by it
  (IntroductionPointV3.create_for_link_specifiers with signing_key), InnerLayer.create and
  HiddenServiceDescriptorV3.content with the blinding nonce (stem blinds the identity key and
  signs the signing-key certificate with the blinded key, in pure Python);
- decode: HiddenServiceDescriptorV3(text, validate=True) (parse, descriptor signature) and
  decrypt(address) (both layers, intro points parsed) of the same descriptor torbalance
  decodes. stem checks neither the intro-point certificate signatures nor the blinded key
  against the address; torbalance does (41 verifications and a point multiplication more).
Builds and decodes are timed in alternating blocks (rounds x per_block calls each) after one
warm-up block, and the best round of each is reported, as in bench/descriptor.ts.

If stem or cryptography cannot be imported, prints {"available": false, "reason": ...}.
"""
import binascii
import json
import sys
import time


def main():
    try:
        import stem
        import stem.client.datatype as datatype
        from stem.descriptor.hidden_service import HiddenServiceDescriptorV3, InnerLayer, IntroductionPointV3
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    except ImportError as e:
        json.dump({'available': False, 'reason': 'cannot import stem/cryptography: %s' % e}, sys.stdout)
        return

    req = json.load(sys.stdin)
    unhex = binascii.unhexlify
    identity = Ed25519PrivateKey.from_private_bytes(unhex(req['identity_seed']))
    nonce = unhex(req['blinding_nonce'])
    revision = req['revision_counter']
    address = req['address']
    text = req['descriptor'].encode()
    intro_points = []
    for ip in req['intro_points']:
        specs = []
        for ls in ip['link_specifiers']:
            value = unhex(ls['value'])
            spec, rest = datatype.LinkSpecifier.pop(bytes([ls['type'], len(value)]) + value)
            assert rest == b''
            specs.append(spec)
        intro_points.append((specs, unhex(ip['onion_key']), unhex(ip['enc_key']), unhex(ip['auth_key'])))

    if HiddenServiceDescriptorV3.address_from_identity_key(identity, suffix=False) != address.replace('.onion', ''):
        raise ValueError('identity seed does not give the benchmark address')

    def build():
        signing = Ed25519PrivateKey.generate()
        ips = [
            IntroductionPointV3.create_for_link_specifiers(specs, onion_key=onion, enc_key=enc, auth_key=auth, signing_key=signing)
            for specs, onion, enc, auth in intro_points
        ]
        inner = InnerLayer.create(introduction_points=ips)
        return HiddenServiceDescriptorV3.content(
            inner_layer=inner, identity_key=identity, signing_key=signing, revision_counter=revision, blinding_nonce=nonce
        )

    def decode():
        return HiddenServiceDescriptorV3(text, validate=True).decrypt(address)

    sample = build()
    n_built = len(HiddenServiceDescriptorV3(sample, validate=True).decrypt(address).introduction_points)
    n_decoded = len(decode().introduction_points)
    if n_built != len(intro_points) or n_decoded != len(intro_points):
        raise ValueError('stem found %d / %d intro points, expected %d' % (n_built, n_decoded, len(intro_points)))

    per_block = req['per_block']
    best = [float('inf'), float('inf')]
    for r in range(req['rounds'] + 1):  # round 0 is the warm-up
        for k, fn in enumerate((build, decode)):
            t = time.perf_counter()
            for _ in range(per_block):
                fn()
            if r > 0:
                best[k] = min(best[k], (time.perf_counter() - t) / per_block)
    json.dump({
        'available': True,
        'stem_version': stem.__version__,
        'python': sys.version.split()[0],
        'descriptor_bytes': len(sample),
        'builds_per_second': 1 / best[0],
        'decodes_per_second': 1 / best[1],
    }, sys.stdout)


if __name__ == '__main__':
    main()
