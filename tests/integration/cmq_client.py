#!/usr/bin/python3
"""A CMQ v2 client for wharf's integration tests and for operators (stdlib only).

Speaks the wire format of ../../docs/API.md (Tencent Cloud CMQ v2): GET or POST of form
parameters, signed with HmacSHA1 or HmacSHA256 over

    METHOD + Host header + path + "?" + "&".join(name.replace("_", ".") + "=" + value
                                                for name in sorted(params)
                                                if name != "Signature")

(values raw, not URL-encoded), answers decoded from JSON. One keep-alive connection per
client, reopened when the server closed it while idle.

Tests can tamper with every part of a request (wrong key, stale timestamp, repeated
nonce, no signature, a different Host header or path, no Content-Type, the SDK variant
that leaves `@` values out of the signed string, ...): see `CmqClient.call`.

Command line (operators; also shown in docs/API.md):

    python3 tests/integration/cmq_client.py [options] Action=CreateQueue queueName=orders
    python3 tests/integration/cmq_client.py --curl Action=ListQueue     # a signed curl line

Options: --endpoint URL (default $CMQ_ENDPOINT or http://127.0.0.1:8080), --secret-id,
--secret-key (default $CMQ_SECRET_ID / $CMQ_SECRET_KEY or the embedded development
credential wharf-dev / wharf-dev-secret), --ca FILE (CA for https, default $CMQ_CA or
./wharf-data/tls/dev-ca.pem), --get (GET instead of POST), --sha1 (HmacSHA1 instead of
HmacSHA256), --curl (print a curl command instead of sending), --sign (print the string
to sign and the signature).
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import secrets
import ssl
import sys
import time
import urllib.parse

DEFAULT_PATH = "/v2/index.php"

SHA1 = "HmacSHA1"
SHA256 = "HmacSHA256"

# Marker for "leave this out of the request" in call() overrides.
OMIT = object()


class CmqHttpError(RuntimeError):
    """The server answered with an HTTP status other than 200, or with a body that is not
    a JSON object. CMQ always answers 200 with a JSON object, so this is a server bug."""

    def __init__(self, status, body, headers=None):
        super().__init__("HTTP %s: %r" % (status, body[:500]))
        self.status = status
        self.body = body
        self.headers = headers or {}


def indexed(name, values, start=1, step=1):
    """Array parameters: indexed("msgBody", ["a", "b"]) -> {"msgBody.1": "a",
    "msgBody.2": "b"}. start=0 gives the 0-based form; step=2 a non-consecutive one."""
    return {"%s.%d" % (name, start + i * step): v for i, v in enumerate(values)}


def string_to_sign(method, host_header, path, params, skip_at_values=False):
    """The signed string of cmq-api.md. `params` maps names to decoded string values.
    skip_at_values: the variant of one official SDK that leaves out, for POST, every
    parameter whose value begins with "@"."""
    parts = []
    for name in sorted(params):
        if name == "Signature":
            continue
        value = params[name]
        if skip_at_values and method == "POST" and value.startswith("@"):
            continue
        parts.append(name.replace("_", ".") + "=" + value)
    return method + host_header + path + "?" + "&".join(parts)


def sign(secret_key, src, signature_method=None):
    """base64(HMAC(secret_key, src)); HmacSHA256 when signature_method is "HmacSHA256",
    else HmacSHA1 (as the server: anything else or absent means SHA1)."""
    digest = hashlib.sha256 if signature_method == SHA256 else hashlib.sha1
    mac = hmac.new(secret_key.encode(), src.encode(), digest).digest()
    return base64.b64encode(mac).decode()


def new_nonce():
    """A random positive integer up to 2^63-1."""
    return secrets.randbelow(2 ** 63 - 1) + 1


class CmqClient:
    """One keep-alive connection to a CMQ endpoint.

    host, port: where to connect. tls: an ssl.SSLContext (HTTPS) or None (HTTP).
    method: "POST" (default) or "GET". signature_method: "HmacSHA256" (default),
    "HmacSHA1", or None (no SignatureMethod parameter: the server uses SHA1).
    retry_idle: reopen the connection and send again once when a reused connection turns
    out to be closed before any answer (the server may close idle keep-alive
    connections). Crash tests turn it off: after a kill -9 a request must fail."""

    def __init__(self, host, port, secret_id, secret_key, tls=None, method="POST",
                 signature_method=SHA256, path=DEFAULT_PATH, timeout_s=60.0, retry_idle=True):
        self.host = host
        self.port = port
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.tls = tls
        self.method = method
        self.signature_method = signature_method
        self.path = path
        self.timeout_s = timeout_s
        self.retry_idle = retry_idle
        self.conn = None
        self.connects = 0       # TCP connections opened (keep-alive check)
        self.requests = 0       # requests answered on the current connection
        self.last_request = None  # (method, path, headers, body or query) of the last call

    @property
    def host_header(self):
        return "%s:%d" % (self.host, self.port)

    def _connect(self):
        self.close()
        if self.tls is not None:
            self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.tls,
                                                    timeout=self.timeout_s)
        else:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        self.conn.connect()
        self.connects += 1
        self.requests = 0

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None

    def signed_params(self, action, params=None, *, secret_id=None, secret_key=None,
                      signature_method=None, timestamp=None, nonce=None, signature=None,
                      sign_host=None, sign_path=None, sign_method=None, sign_extra=None,
                      sign_as=None, skip_at_values=False, path=None, method=None):
        """The full parameter dict of a request (common parameters and Signature).
        Overrides (tampering): see call(). A value OMIT leaves that parameter out."""
        method = method or self.method
        path = path or self.path
        sm = self.signature_method if signature_method is None else signature_method
        p = {
            "Action": action,
            "SecretId": self.secret_id if secret_id is None else secret_id,
            "Timestamp": int(time.time()) if timestamp is None else timestamp,
            "Nonce": new_nonce() if nonce is None else nonce,
            "SignatureMethod": OMIT if sm is None else sm,
        }
        p.update(params or {})
        p = {k: (v if isinstance(v, str) else str(v)) for k, v in p.items() if v is not OMIT}
        if signature is OMIT:
            return p
        if signature is not None:
            p["Signature"] = signature
            return p
        to_sign = dict(p)
        to_sign.update(sign_extra or {})
        src = string_to_sign(sign_method or method, sign_host or self.host_header,
                             sign_path or path, to_sign, skip_at_values)
        digest = sign_as or p.get("SignatureMethod")
        p["Signature"] = sign(self.secret_key if secret_key is None else secret_key, src,
                              digest)
        return p

    def call(self, action, params=None, *, method=None, path=None, content_type=True,
             host_header=None, headers=None, **overrides):
        """Sends one request; returns the decoded JSON answer (a dict).

        action: the Action value (any case; OMIT: no Action). params: the other
        parameters (values str or int; use indexed() for arrays).
        method: "GET"/"POST" for this call. path: the request path for this call.
        content_type: True sends application/x-www-form-urlencoded (POST), False sends
        no Content-Type header at all, a string sends that.
        host_header: send this Host header (the signature still uses the real one
        unless sign_host says otherwise).
        Tampering overrides: secret_id, secret_key (sign with this key),
        signature_method (OMIT: no SignatureMethod parameter), timestamp, nonce,
        signature (a literal Signature value, or OMIT for none), sign_host, sign_path,
        sign_method (sign as if these were the request's), sign_extra (parameters signed
        but not sent), sign_as (compute the HMAC with this method whatever the
        SignatureMethod parameter says), skip_at_values (sign the SDK variant without
        "@" values). Any parameter in `params` may be OMIT (left out).
        Raises CmqHttpError when the answer is not HTTP 200 with a JSON object."""
        method = method or self.method
        path = path or self.path
        p = self.signed_params(action, params, path=path, method=method, **overrides)
        status, hdrs, body = self.raw(method, path, p, content_type=content_type,
                                      host_header=host_header, headers=headers)
        if status != 200:
            raise CmqHttpError(status, body, hdrs)
        try:
            answer = json.loads(body)
        except ValueError:
            raise CmqHttpError(status, body, hdrs) from None
        if not isinstance(answer, dict):
            raise CmqHttpError(status, body, hdrs)
        return answer

    def raw(self, method, path, params, content_type=True, host_header=None, headers=None):
        """Sends `params` (already complete, Signature included) as GET query or POST form;
        returns (status, headers dict with lower-case names, body bytes)."""
        encoded = urllib.parse.urlencode(params)
        h = {"Host": host_header or self.host_header, "Connection": "keep-alive"}
        body = None
        target = path
        if method == "GET":
            target = path + "?" + encoded
        else:
            body = encoded.encode()
            if content_type is True:
                h["Content-Type"] = "application/x-www-form-urlencoded"
            elif content_type:
                h["Content-Type"] = content_type
        h.update(headers or {})
        self.last_request = (method, target, h, body)
        for attempt in (0, 1):
            reused = self.conn is not None and self.requests > 0
            if self.conn is None:
                self._connect()
            try:
                # skip_accept_encoding: the request carries only what we chose.
                self.conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                for k, v in h.items():
                    self.conn.putheader(k, v)
                if body is not None:
                    self.conn.putheader("Content-Length", str(len(body)))
                self.conn.endheaders(body)
                resp = self.conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt == 0 and reused and self.retry_idle:
                    continue
                raise
            except BaseException:
                self.close()
                raise
            self.requests += 1
            if resp.will_close:
                self.close()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data

    # Conveniences used by many tests.
    def ok(self, action, params=None, **kw):
        """call() that must answer code 0; returns the answer."""
        answer = self.call(action, params, **kw)
        if answer.get("code") != 0:
            raise AssertionError("%s %r -> %r" % (action, params, answer))
        return answer


def tls_context(ca_file):
    """An SSL context that trusts `ca_file` (and checks the host name)."""
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)


# ------------------------------------------------------------------------------- CLI

def _main(argv):
    import argparse
    ap = argparse.ArgumentParser(
        description="Sends one signed CMQ request to wharf and prints the JSON answer.",
        epilog="Example: %(prog)s Action=SendMessage queueName=orders msgBody=hello")
    ap.add_argument("--endpoint", default=os.environ.get("CMQ_ENDPOINT", "http://127.0.0.1:8080"),
                    help="http://host:port or https://host:port (path optional, default %s)"
                    % DEFAULT_PATH)
    ap.add_argument("--secret-id", default=os.environ.get("CMQ_SECRET_ID", "wharf-dev"))
    ap.add_argument("--secret-key", default=os.environ.get("CMQ_SECRET_KEY", "wharf-dev-secret"))
    ap.add_argument("--ca", default=os.environ.get("CMQ_CA", "./wharf-data/tls/dev-ca.pem"),
                    help="CA certificate to trust for https")
    ap.add_argument("--get", action="store_true", help="GET instead of POST")
    ap.add_argument("--sha1", action="store_true", help="HmacSHA1 instead of HmacSHA256")
    ap.add_argument("--curl", action="store_true", help="print a signed curl command, send nothing")
    ap.add_argument("--sign", action="store_true",
                    help="print the string to sign and the signature, send nothing")
    ap.add_argument("params", nargs="+", metavar="name=value",
                    help="Action=... and the action's parameters (msgBody.1=... for arrays)")
    args = ap.parse_args(argv)

    url = urllib.parse.urlsplit(args.endpoint)
    if url.scheme not in ("http", "https") or not url.hostname:
        ap.error("--endpoint must be http://host:port or https://host:port")
    https = url.scheme == "https"
    port = url.port or (443 if https else 80)
    path = url.path or DEFAULT_PATH
    params = {}
    for item in args.params:
        name, sep, value = item.partition("=")
        if not sep:
            ap.error("not name=value: %r" % item)
        params[name] = value
    action = params.pop("Action", None)
    if action is None:
        ap.error("Action=... is required")
    method = "GET" if args.get else "POST"
    ctx = None
    if https and not (args.curl or args.sign):
        ctx = tls_context(args.ca)
    client = CmqClient(url.hostname, port, args.secret_id, args.secret_key, tls=ctx,
                       method=method, signature_method=SHA1 if args.sha1 else SHA256, path=path)
    # The Host header curl and http.client send: host:port, as the signature needs it.
    p = client.signed_params(action, params)
    if args.sign:
        unsigned = {k: v for k, v in p.items() if k != "Signature"}
        print(string_to_sign(method, client.host_header, path, unsigned))
        print(p["Signature"])
        return 0
    if args.curl:
        import shlex
        base = "%s://%s%s" % (url.scheme, client.host_header, path)
        cmd = ["curl", "-sS"]
        if https:
            cmd += ["--cacert", args.ca]
        if method == "GET":
            cmd.append(base + "?" + urllib.parse.urlencode(p))
        else:
            cmd += ["--data", urllib.parse.urlencode(p), base]
        print(" ".join(shlex.quote(c) for c in cmd))
        return 0
    answer = client.call(action, params)
    print(json.dumps(answer, indent=2, ensure_ascii=False))
    return 0 if answer.get("code") == 0 else 1


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
