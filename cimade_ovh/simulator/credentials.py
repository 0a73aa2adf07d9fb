"""Applications and consumer keys: signed requests, access rules, the validation page, /auth and /me.

Credentials is mixed into FakeOVH, which gives it `state`, `_lock`, `port`, save() and new_id().
"""

import datetime
import hashlib
import hmac
import html
import re
import secrets
import time

from .account import DEMO_APPLICATION_KEY, PARIS, iso, now
from .schema import ApiError, find, invalid, route
from .server import VALIDATION_PATH

TIMESTAMP_TOLERANCE = 180  # seconds a signed request's X-Ovh-Timestamp may be away from the server's clock


def rule_matches(pattern, path):
    """Tell whether an access rule's path (where `*` matches any rest) covers a request path."""
    regex = "".join(".*" if part == "*" else re.escape(part) for part in re.split(r"(\*)", pattern))
    return re.fullmatch(regex, path) is not None


def signature(secret, consumer_key, method, url, body, timestamp):
    """Return the X-Ovh-Signature a client must send, as ovh/client.py computes it."""
    text = "+".join([secret, consumer_key, method.upper(), url, body, timestamp])
    return "$1$" + hashlib.sha1(text.encode("utf-8")).hexdigest()


def credential_status(credential, moment):
    """Return a credential's status at a moment: a validated key past its expiration is "expired"."""
    expiration = credential["expiration"]
    if credential["status"] == "validated" and expiration and datetime.datetime.fromisoformat(expiration) <= moment:
        return "expired"
    return credential["status"]


class Credentials:
    """The part of FakeOVH that knows applications and consumer keys."""

    def create_credential(self, rules, application_key=DEMO_APPLICATION_KEY, validated=True, expiration=None):
        """Create a consumer key for an application, validated or pending; return it."""
        with self._lock:
            application = next((a for a in self.state["applications"] if a["applicationKey"] == application_key), None)
            if application is None:
                raise ValueError(f"Unknown application key {application_key!r}")
            credential = self.new_credential(application, rules, None)
            if validated:
                self.validate_credential(credential["consumerKey"], expiration)
            return credential["consumerKey"]

    def new_credential(self, application, rules, redirection):
        """Add a pendingValidation credential."""
        credential = {
            "credentialId": self.new_id("credentialId"),
            "applicationId": application["applicationId"],
            "consumerKey": secrets.token_hex(16),
            "status": "pendingValidation",
            "rules": [{"method": rule["method"], "path": rule["path"]} for rule in rules],
            "creation": iso(now()),
            "expiration": None,
            "lastUse": None,
            "allowedIPs": None,
            "ovhSupport": False,
            "redirection": redirection,
            "credentialToken": secrets.token_urlsafe(24),
        }
        self.state["credentials"].append(credential)
        return credential

    def validate_credential(self, consumer_key, expiration=None):
        """Validate a pending consumer key, as OVH's validation page does; expiration None means unlimited."""
        with self._lock:
            credential = next((c for c in self.state["credentials"] if c["consumerKey"] == consumer_key), None)
            if credential is None:
                raise KeyError(consumer_key)
            if credential["status"] != "pendingValidation":
                raise ValueError(f"The credential is {credential['status']}, not pendingValidation")
            credential["status"] = "validated"
            credential["expiration"] = iso(expiration) if expiration else None
            self.save()

    def validation_page(self, token):
        """Return (status, HTML) of the page asking a person to validate a consumer key."""
        with self._lock:
            credential = next((c for c in self.state["credentials"] if c["credentialToken"] == token), None)
            if credential is None or credential["status"] != "pendingValidation":
                return (
                    404,
                    "<!DOCTYPE html><title>OVH</title><p>This credential request is unknown or already handled.</p>",
                )
            application = find(self.state["applications"], "applicationId", credential["applicationId"])
            rules = "".join(
                f"<li><code>{html.escape(r['method'])} {html.escape(r['path'])}</code></li>"
                for r in credential["rules"]
            )
            return (
                200,
                f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>OVH simulator - authorise an application</title></head>
<body>
<h1>Authorise {html.escape(application["name"])}</h1>
<p>Account {html.escape(self.state["me"]["nichandle"])}. This application asks for:</p>
<ul>{rules}</ul>
<form method="post" action="{VALIDATION_PATH}">
<input type="hidden" name="credentialToken" value="{html.escape(token)}">
<fieldset><legend>Validity</legend>
<label><input type="radio" name="validity" value="unlimited" checked> Unlimited</label><br>
<label><input type="radio" name="validity" value="days"> For
<input type="number" name="days" min="1" value="30"> days</label><br>
<label><input type="radio" name="validity" value="date"> Until
<input type="date" name="date"> (00:00, Paris time)</label>
</fieldset>
<button name="action" value="validate">Log in and authorise</button>
<button name="action" value="refuse">Refuse</button>
</form>
</body></html>
""",
            )

    def validation_submit(self, form):
        """Take the validation page's form: validate (with the chosen validity) or refuse the key."""
        field = {name: values[0] for name, values in form.items()}
        with self._lock:
            credential = next(
                (
                    c
                    for c in self.state["credentials"]
                    if c["credentialToken"] and c["credentialToken"] == field.get("credentialToken")
                ),
                None,
            )
            if credential is None or credential["status"] != "pendingValidation":
                return (
                    404,
                    "<!DOCTYPE html><title>OVH</title><p>This credential request is unknown or already handled.</p>",
                )
            if field.get("action") == "refuse":
                credential["status"] = "refused"
                self.save()
                return 200, "<!DOCTYPE html><title>OVH</title><p>Access refused.</p>"
            validity = field.get("validity", "unlimited")
            try:
                if validity == "days":
                    expiration = now() + datetime.timedelta(days=int(field["days"]))
                elif validity == "date":
                    expiration = datetime.datetime.combine(
                        datetime.date.fromisoformat(field["date"]), datetime.time(), PARIS
                    )
                else:
                    expiration = None
            except (KeyError, ValueError):
                return 400, "<!DOCTYPE html><title>OVH</title><p>Invalid validity.</p>"
            self.validate_credential(credential["consumerKey"], expiration)
            refresh = ""
            if credential["redirection"]:
                refresh = f'<meta http-equiv="refresh" content="0;url={html.escape(credential["redirection"])}">'
            return 200, f"<!DOCTYPE html><title>OVH</title>{refresh}<p>Access validated.</p>"

    # --- Signed requests ---

    def application(self, headers):
        """Return the application of X-Ovh-Application, or the 403 INVALID_KEY."""
        key = headers.get("X-Ovh-Application")
        for application in self.state["applications"]:
            if key and application["applicationKey"] == key:
                return application
        raise ApiError(403, "Invalid application key", "INVALID_KEY")

    def authenticate(self, method, path, url, headers, raw):
        """Check application, consumer key, signature, time and access rules; return (application, credential)."""
        application = self.application(headers)
        consumer_key = headers.get("X-Ovh-Consumer")
        if not consumer_key:
            raise ApiError(403, "You must login first", "NOT_CREDENTIAL")
        credential = next(
            (
                c
                for c in self.state["credentials"]
                if c["consumerKey"] == consumer_key and c["applicationId"] == application["applicationId"]
            ),
            None,
        )
        if credential is None:
            raise ApiError(403, "This credential does not exist", "INVALID_CREDENTIAL")
        moment = now()
        status = credential_status(credential, moment)
        if status != "validated":
            raise ApiError(403, f"This credential is not valid ({status})", "INVALID_CREDENTIAL")
        timestamp = headers.get("X-Ovh-Timestamp", "")
        expected = signature(application["applicationSecret"], consumer_key, method, url, raw, timestamp)
        if not hmac.compare_digest(headers.get("X-Ovh-Signature", ""), expected):
            raise ApiError(400, "Invalid signature")
        if not timestamp.isdigit() or abs(int(timestamp) - time.time()) > TIMESTAMP_TOLERANCE:
            raise ApiError(
                400, f"Query out of time: X-Ovh-Timestamp must be within {TIMESTAMP_TOLERANCE} s of the server's time"
            )
        if not any(rule["method"] == method and rule_matches(rule["path"], path) for rule in credential["rules"]):
            raise ApiError(403, f"This call has not been granted: {method} {path}", "NOT_GRANTED_CALL")
        credential["lastUse"] = iso(moment)
        return application, credential

    # --- API routes ---

    @route("GET", "/auth/time")
    def get_time(self, call):
        return int(time.time())

    @route("POST", "/auth/credential")
    def post_credential(self, call):
        for rule in call.body["accessRules"]:
            if "method" not in rule or "path" not in rule:
                raise invalid("accessRules", "needs a method and a path in each rule")
        credential = self.new_credential(call.application, call.body["accessRules"], call.body.get("redirection"))
        url = f"http://127.0.0.1:{self.port}{VALIDATION_PATH}?credentialToken={credential['credentialToken']}"
        return {"validationUrl": url, "consumerKey": credential["consumerKey"], "state": "pendingValidation"}

    def credential_view(self, credential):
        """Return an auth.ApiCredential, with its status as of now."""
        return {**credential, "status": credential_status(credential, now())}

    @route("GET", "/auth/currentCredential")
    def get_current_credential(self, call):
        return self.credential_view(call.credential)

    @route("GET", "/me")
    def get_me(self, call):
        return self.state["me"]

    def own_credentials(self, call):
        """Return the credentials of the calling application."""
        return [c for c in self.state["credentials"] if c["applicationId"] == call.application["applicationId"]]

    @route("GET", "/me/api/credential")
    def list_credentials(self, call):
        moment = now()
        return [
            c["credentialId"]
            for c in self.own_credentials(call)
            if call.query.get("applicationId", c["applicationId"]) == c["applicationId"]
            and call.query.get("status", credential_status(c, moment)) == credential_status(c, moment)
        ]

    @route("GET", "/me/api/credential/{credentialId}")
    def get_credential(self, call):
        return self.credential_view(find(self.own_credentials(call), "credentialId", call.params["credentialId"]))

    @route("DELETE", "/me/api/credential/{credentialId}")
    def delete_credential(self, call):
        self.state["credentials"].remove(find(self.own_credentials(call), "credentialId", call.params["credentialId"]))
