"""JSON Web Tokens as MQTT credentials (wharf only), with keys and tokens made at test time by
the openssl CLI: RS256 from a PEM public key, ES256 and HS256 from a JWKS; valid, expired,
signed by another key, of another algorithm (an HS256 token keyed with the public key's PEM
text), and "none"; the token's subject as the ACL's username, its ACL claim as rules of the
client's own (kept with its session across a restart); new keys on SIGHUP."""

import base64
import json
import shutil
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

import mqtt_raw as raw
from wharf_fixture import BrokerTestCase, is_mosquitto, unique

BAD_CREDENTIALS, NOT_AUTHORIZED, V3_BAD_CREDENTIALS = 0x86, 0x87, 4


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def openssl(*args, data=None):
    return subprocess.run(["openssl", *args], input=data, capture_output=True, check=True).stdout


def der_to_raw(der):
    """An ECDSA signature as openssl writes it (DER SEQUENCE of two INTEGERs) -> r || s, 32
    bytes each, as JWS wants it (RFC 7518 3.4)."""
    assert der[0] == 0x30
    pos = 2 if der[1] < 0x80 else 3
    out = b""
    for _ in range(2):
        assert der[pos] == 0x02
        length = der[pos + 1]
        value = der[pos + 2:pos + 2 + length].lstrip(b"\x00")
        out += value.rjust(32, b"\x00")
        pos += 2 + length
    return out


class Keys:
    """An RSA and a P-256 key pair and an HMAC secret, in `directory`."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.rsa, self.ec = self.dir / "rsa.key", self.dir / "ec.key"
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(self.rsa))
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(self.ec))
        self.rsa_pub = openssl("pkey", "-in", str(self.rsa), "-pubout")
        self.secret = b"an HMAC secret of 32 bytes, ok!!"

    def ec_jwk(self, kid):
        # The public key's DER ends with the uncompressed point 04 || x || y.
        point = openssl("pkey", "-in", str(self.ec), "-pubout", "-outform", "DER")[-65:]
        assert point[0] == 4
        return {"kty": "EC", "crv": "P-256", "kid": kid, "x": b64url(point[1:33]), "y": b64url(point[33:])}

    def oct_jwk(self, kid):
        return {"kty": "oct", "kid": kid, "k": b64url(self.secret)}

    def token(self, claims, alg="RS256", key=None, kid=None, header=None):
        head = header or {"alg": alg, "typ": "JWT", **({"kid": kid} if kid else {})}
        signing_input = (b64url(json.dumps(head).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
        if alg == "RS256":
            signature = openssl("dgst", "-sha256", "-sign", str(key or self.rsa), data=signing_input)
        elif alg == "ES256":
            signature = der_to_raw(openssl("dgst", "-sha256", "-sign", str(key or self.ec), data=signing_input))
        elif alg == "HS256":
            secret = key if key is not None else self.secret
            signature = openssl("dgst", "-sha256", "-mac", "HMAC", "-macopt", "hexkey:" + secret.hex(), "-binary",
                                data=signing_input)
        else:
            signature = b""
        return signing_input.decode() + "." + b64url(signature)


def claims(sub="meter-7", lifetime_s=600, **more):
    return {"sub": sub, "exp": int(time.time()) + lifetime_s, **more}


class JwtTest(BrokerTestCase):
    @classmethod
    def setUpClass(cls):
        if is_mosquitto():
            raise unittest.SkipTest("wharf-only: auth.jwt is wharf's")
        cls.keys_dir = tempfile.mkdtemp(prefix="wharf-jwt-")
        cls.keys = Keys(cls.keys_dir)
        cls.pem_file = Path(cls.keys_dir) / "rsa.pub"
        cls.pem_file.write_bytes(cls.keys.rsa_pub)
        cls.broker_options = {"anonymous": False, "auth": cls.auth_section(cls.pem_file)}
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.keys_dir, ignore_errors=True)

    @staticmethod
    def auth_section(keys_file, extra=""):
        return ("  jwt:\n    keys_file: %s\n    audience: wharf-test\n%s"
                "  acl:\n"
                '    - {permission: allow, action: publish, topic: "devices/%%u/#"}\n'
                '    - {permission: allow, action: subscribe, topic: "commands/%%u/#"}\n'
                "  acl_no_match: deny\n" % (keys_file, extra))

    def login(self, token, expect=0, version=5, username="ignored", broker=None):
        c = self.raw(broker)
        c.version = version
        c.connect(unique("jwt"), expect_reason=expect, username=username, password=token)
        return c

    def test_a_valid_rs256_token_logs_in_as_its_subject(self):
        token = self.keys.token(claims(aud="wharf-test"))
        c = self.login(token)
        self.login(token, version=4)
        # The ACL sees the token's subject: its own devices/ subtree, nobody else's.
        c.send(raw.publish("devices/meter-7/kwh", b"1", qos=1, pid=1))
        self.assertEqual(c.expect(raw.PUBACK).reason, 0)
        c.send(raw.publish("devices/meter-8/kwh", b"1", qos=1, pid=2))
        self.assertEqual(c.expect(raw.PUBACK).reason, NOT_AUTHORIZED)

    def test_bad_tokens_are_refused(self):
        other_key = Path(self.keys_dir) / "other.key"
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(other_key))
        refused = {
            "expired": self.keys.token(claims(lifetime_s=-120, aud="wharf-test")),
            "another key": self.keys.token(claims(aud="wharf-test"), key=other_key),
            "HS256 keyed with the public key": self.keys.token(claims(aud="wharf-test"), alg="HS256",
                                                               key=self.keys.rsa_pub),
            "none": self.keys.token(claims(aud="wharf-test"), alg="none", header={"alg": "none"}) + "c2ln",
            "another audience": self.keys.token(claims(aud="elsewhere")),
            "not a token": "hunter2",
        }
        for why, token in refused.items():
            with self.subTest(why):
                self.login(token, expect=BAD_CREDENTIALS)
        self.login(refused["expired"], expect=V3_BAD_CREDENTIALS, version=4)
        log = self.broker.log()
        for reason in ("token refused: expired", "token refused: the signature does not verify",
                       "token refused: no HS256 key", "token refused: algorithm 'none' is not accepted",
                       "token refused: not for this audience (aud)"):
            self.assertIn(reason, log)

    def test_a_jwks_of_es256_and_hs256_keys_replaced_on_sighup(self):
        jwks = Path(self.keys_dir) / "jwks.json"
        jwks.write_text(json.dumps({"keys": [self.keys.ec_jwk("ec-1"), self.keys.oct_jwk("hmac-1")]}))
        b = self.new_broker(anonymous=False, auth=self.auth_section(jwks))
        self.login(self.keys.token(claims(aud="wharf-test"), alg="ES256", kid="ec-1"), broker=b)
        self.login(self.keys.token(claims(aud="wharf-test"), alg="HS256", kid="hmac-1"), broker=b)
        self.login(self.keys.token(claims(aud="wharf-test")), expect=BAD_CREDENTIALS, broker=b)  # no RSA key here
        # The HMAC key is retired: SIGHUP reads the file again.
        jwks.write_text(json.dumps({"keys": [self.keys.ec_jwk("ec-1")]}))
        b.reload("users, ACL", auth=self.auth_section(jwks))
        self.login(self.keys.token(claims(aud="wharf-test"), alg="HS256", kid="hmac-1"), expect=BAD_CREDENTIALS,
                   broker=b)
        self.login(self.keys.token(claims(aud="wharf-test"), alg="ES256", kid="ec-1"), broker=b)

    def test_rules_of_the_tokens_acl_claim_hold_across_a_restart(self):
        b = self.new_broker(anonymous=False, auth=self.auth_section(self.pem_file, "    acl_claim: acl\n"))
        reader = self.keys.token(claims(aud="wharf-test", acl=[
            {"permission": "deny", "action": "publish", "topic": "devices/%u/firmware"},
            {"permission": "deny", "action": "subscribe", "topic": "fleet/secret"},
            {"permission": "allow", "action": "subscribe", "topic": "fleet/#"}]))
        writer = self.keys.token(claims(sub="ops", aud="wharf-test", acl=[
            {"permission": "allow", "action": "publish", "topic": "fleet/#"}]))
        cid = unique("jwt-reader")
        c = self.raw(b)
        c.connect(cid, username="x", password=reader, clean=False, props={"session_expiry_interval": 300})
        c.send(raw.publish("devices/meter-7/firmware", b"1", qos=1, pid=1))
        self.assertEqual(c.expect(raw.PUBACK).reason, NOT_AUTHORIZED)  # its own deny, before the config's allow
        c.send(raw.publish("devices/meter-7/kwh", b"1", qos=1, pid=2))
        self.assertEqual(c.expect(raw.PUBACK).reason, 0)
        c.send(raw.subscribe(3, [("fleet/#", 1), ("other/#", 1)]))
        self.assertEqual(c.expect(raw.SUBACK).codes, [1, NOT_AUTHORIZED])
        c.send(raw.disconnect())
        c.wait_closed()
        b.restart()
        # Offline, after a restart: the session's own rules came back with it.
        w = self.raw(b)
        w.connect(unique("jwt-writer"), username="x", password=writer)
        for pid, topic in ((1, "fleet/secret"), (2, "fleet/news")):
            w.send(raw.publish(topic, topic.encode(), qos=1, pid=pid))
            self.assertEqual(w.expect(raw.PUBACK).reason, 0)
        again = self.raw(b)
        self.assertTrue(again.connect(cid, username="x", password=reader, clean=False,
                                      props={"session_expiry_interval": 300}).session_present)
        # Queued in order: a leaked fleet/secret would come first.
        self.assertEqual(again.expect(raw.PUBLISH).topic, "fleet/news")

    def test_the_token_may_travel_in_the_username(self):
        b = self.new_broker(anonymous=False, auth=self.auth_section(self.pem_file, "    from: username\n"))
        token = self.keys.token(claims(aud="wharf-test"))
        c = self.raw(b)
        c.connect(unique("jwt"), username=token)
        c.send(raw.publish("devices/meter-7/kwh", b"1", qos=1, pid=1))
        self.assertEqual(c.expect(raw.PUBACK).reason, 0)


if __name__ == "__main__":
    unittest.main()
