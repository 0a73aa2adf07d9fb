"""The OVH API description the simulator answers from, and the registry of the operations it simulates.

Schema reads ovh-api-schema.json (beside this file, as OVH publishes it): which routes exist,
and what their parameters and objects look like. @route registers a FakeOVH method as the
simulation of one operation; FakeOVH checks at start that every registered one is in the schema.
"""

import copy
import dataclasses
import datetime
import http
import ipaddress
import json
import re
import urllib.parse
from pathlib import Path

SCHEMA_PATH = Path(__file__).resolve().with_name("ovh-api-schema.json")


# --- Errors ---


class ApiError(Exception):
    """An error answer of the API: HTTP status, message and, for a 403, OVH's errorCode."""

    def __init__(self, status, message, error_code=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code

    def body(self):
        """Return the JSON body OVH sends with this error."""
        body = {"message": self.message, "httpCode": f"{self.status} {http.HTTPStatus(self.status).phrase}"}
        if self.error_code:
            body["errorCode"] = self.error_code
        return body


def invalid(name, problem):
    """Return the 400 error for a parameter or property that breaks the schema."""
    return ApiError(400, f"Invalid parameter: property '{name}' {problem}")



def not_found(key, value):
    """Return OVH's 404 for an unknown object."""
    return ApiError(404, f"The requested object ({key} = {value}) does not exist")


def find(items, key, value):
    """Return the item of a list whose `key` is `value`, or raise the 404."""
    for item in items:
        if item[key] == value:
            return item
    raise not_found(key, value)


# --- Types ---


def is_time(value):
    """Tell whether `value` is a valid "HH:MM:SS"."""
    found = re.fullmatch(r"(\d\d):(\d\d):(\d\d)", value)
    return bool(found) and int(found[1]) < 24 and int(found[2]) < 60 and int(found[3]) < 60


def is_datetime(value):
    """Tell whether `value` is an ISO 8601 date and time."""
    try:
        datetime.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def is_ip_block(value):
    """Tell whether `value` is an IP address or network."""
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


PRIMITIVES = {
    "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "double": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "password": lambda v: isinstance(v, str),
    "uuid": lambda v: isinstance(v, str),
    "phoneNumber": lambda v: isinstance(v, str) and re.fullmatch(r"00\d{6,15}", v) is not None,
    "time": lambda v: isinstance(v, str) and is_time(v),
    "datetime": lambda v: isinstance(v, str) and is_datetime(v),
    "ipBlock": lambda v: isinstance(v, str) and is_ip_block(v),
    "map[string]string": lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
}



# --- Schema ---


class Schema:
    """The OVH API description: which routes exist, and what their parameters and objects look like."""

    def __init__(self, path=SCHEMA_PATH):
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        self.models = data["models"]
        self.routes = []
        for api in data["apis"]:
            parts = []
            for segment in api["path"].strip("/").split("/"):
                name = re.fullmatch(r"\{(\w+)\}", segment)
                parts.append(f"(?P<{name[1]}>[^/]+)" if name else re.escape(segment))
            operations = {operation["httpMethod"]: operation for operation in api["operations"]}
            self.routes.append((re.compile("/" + "/".join(parts)), api["path"], operations))
        self.routes.sort(key=lambda route: route[1].count("{"))

    def match(self, path):
        """Return (template, {method: operation}, raw path parameters) for a path after /1.0, or None."""
        for pattern, template, operations in self.routes:
            found = pattern.fullmatch(path)
            if found:
                return template, operations, found.groupdict()
        return None

    def parse_text(self, type_name, text, name):
        """Turn a path or query string value into its schema type."""
        model = self.models.get(type_name, {})
        if type_name == "long":
            if not re.fullmatch(r"-?\d+", text):
                raise invalid(name, "is not a valid long")
            return int(text)
        if type_name == "boolean":
            if text not in ("true", "false"):
                raise invalid(name, "is not a valid boolean")
            return text == "true"
        if "enum" in model and text not in model["enum"]:
            raise invalid(name, f"is not a valid {type_name} ({', '.join(model['enum'])})")
        return text

    def path_parameters(self, operation, raw):
        """Type the path parameters of a matched route."""
        types = {p["name"]: p["dataType"] for p in operation["parameters"] if p["paramType"] == "path"}
        return {name: self.parse_text(types[name], urllib.parse.unquote(text), name) for name, text in raw.items()}

    def query_parameters(self, operation, query):
        """Type the query string: only declared parameters, required ones present."""
        declared = {p["name"]: p for p in operation["parameters"] if p["paramType"] == "query"}
        values = {}
        for name, text in urllib.parse.parse_qsl(query, keep_blank_values=True):
            if name not in declared:
                raise invalid(name, "is not a parameter of this call")
            values[name] = self.parse_text(declared[name]["dataType"], text, name)
        for name, parameter in declared.items():
            if parameter.get("required") and name not in values:
                raise invalid(name, "is missing")
        return values

    def body(self, operation, method, raw):
        """Parse and check a request body against the operation's body parameters."""
        parameters = [p for p in operation["parameters"] if p["paramType"] == "body"]
        if not parameters:
            return None
        try:
            value = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise ApiError(400, "Invalid JSON received") from None
        if not isinstance(value, dict):
            raise ApiError(400, "Invalid parameter: the body must be a JSON object")
        # The ovh client sends null for optional arguments left out: in a POST, null means "not given".
        creating = method == "POST"
        whole = [p for p in parameters if not p.get("name")]
        if whole:
            return self.check_object(whole[0]["dataType"], value, "", top=True, creating=creating)
        declared = {p["name"]: p for p in parameters}
        checked = {}
        for name, item in value.items():
            if name not in declared:
                raise invalid(name, "is not a parameter of this call")
            if item is None and creating and not declared[name].get("required"):
                continue
            self.check(declared[name]["dataType"], item, name)
            checked[name] = item
        for name, parameter in declared.items():
            if parameter.get("required") and name not in checked:
                raise invalid(name, "is missing")
        return checked

    def check_object(self, model_name, value, prefix, top=False, creating=False):
        """Check a JSON object against a model: known properties, right types, and no readOnly one at the top."""
        if not isinstance(value, dict):
            raise invalid(prefix or model_name, f"is not a valid {model_name}")
        properties = self.models[model_name]["properties"]
        checked = {}
        for name, item in value.items():
            full_name = prefix + name
            if name not in properties:
                raise invalid(full_name, f"does not exist in {model_name}")
            prop = properties[name]
            if top and prop.get("readOnly"):
                raise invalid(full_name, "is read-only")
            if item is None and creating and not prop.get("required") and not prop.get("canBeNull"):
                continue
            self.check(prop["type"], item, full_name, prop.get("canBeNull", False))
            checked[name] = item
        for name, prop in properties.items():
            if prop.get("required") and name not in checked:
                raise invalid(prefix + name, "is missing")
        return checked

    def check(self, type_name, value, name, nullable=False):
        """Raise a 400 unless `value` is a valid `type_name`."""
        if value is None:
            if not nullable:
                raise invalid(name, "can not be null")
            return
        if type_name.endswith("[]"):
            if not isinstance(value, list):
                raise invalid(name, f"is not a valid {type_name}")
            for index, item in enumerate(value):
                self.check(type_name[:-2], item, f"{name}[{index}]")
            return
        model = self.models.get(type_name)
        if model is None:
            if type_name in PRIMITIVES and not PRIMITIVES[type_name](value):
                raise invalid(name, f"is not a valid {type_name}")
        elif "enum" in model:
            text = str(value) if model.get("enumType") == "long" and PRIMITIVES["long"](value) else value
            if text not in model["enum"]:
                raise invalid(name, f"is not a valid {type_name} ({', '.join(model['enum'])})")
        else:
            self.check_object(type_name, value, name + ".")

    def render(self, type_name, value):
        """Shape a stored value as the API answers it: every property of the model, null when unset."""
        if value is None:
            return None
        if type_name.endswith("[]"):
            return [self.render(type_name[:-2], item) for item in value]
        model = self.models.get(type_name, {})
        if "properties" in model:
            return {name: self.render(prop["type"], value.get(name)) for name, prop in model["properties"].items()}
        return copy.deepcopy(value)


# --- Simulated operations ---


@dataclasses.dataclass
class Call:
    """One API call being answered: typed parameters, checked body and the caller's identity."""

    method: str
    path: str
    headers: object
    params: dict
    query: dict
    body: object
    application: dict
    credential: dict


ROUTES = {}


def route(method, template):
    """Register a FakeOVH method as the simulation of one operation of the schema."""

    def register(function):
        ROUTES[method, template] = function
        return function

    return register
