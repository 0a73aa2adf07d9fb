"""The telephony routes: billing accounts, SIP lines and their options, redirects, easyHunting groups.

Telephony is mixed into FakeOVH, which gives it `state` and new_id(); it checks what OVH
refuses beyond the schema (a second agent with the same number, an empty or duplicate time condition).
"""

from .schema import ApiError, find, not_found, route


class Telephony:
    """The part of FakeOVH that answers /telephony."""

    @route("GET", "/telephony")
    def list_billing_accounts(self, call):
        return sorted(self.state["billingAccounts"])

    def billing(self, call):
        """Return the billing account named in the path, or the 404."""
        name = call.params["billingAccount"]
        if name not in self.state["billingAccounts"]:
            raise not_found("billingAccount", name)
        return self.state["billingAccounts"][name]

    def service(self, call, kind):
        """Return the service of a kind (line, redirect, easyHunting) named in the path, or the 404."""
        services = self.billing(call)[kind]
        if call.params["serviceName"] not in services:
            raise not_found("serviceName", call.params["serviceName"])
        return services[call.params["serviceName"]]

    @route("GET", "/telephony/{billingAccount}")
    def get_billing_account(self, call):
        return self.billing(call)["info"]

    @route("GET", "/telephony/{billingAccount}/line")
    def list_lines(self, call):
        return sorted(self.billing(call)["line"])

    @route("GET", "/telephony/{billingAccount}/line/{serviceName}")
    def get_line(self, call):
        return self.service(call, "line")["line"]

    @route("GET", "/telephony/{billingAccount}/line/{serviceName}/options")
    def get_line_options(self, call):
        return self.service(call, "line")["options"]

    @route("PUT", "/telephony/{billingAccount}/line/{serviceName}/options")
    def put_line_options(self, call):
        self.service(call, "line")["options"].update(call.body)

    @route("GET", "/telephony/{billingAccount}/redirect")
    def list_redirects(self, call):
        return sorted(self.billing(call)["redirect"])

    @route("GET", "/telephony/{billingAccount}/redirect/{serviceName}")
    def get_redirect(self, call):
        return self.service(call, "redirect")

    @route("GET", "/telephony/{billingAccount}/easyHunting")
    def list_easy_huntings(self, call):
        return sorted(self.billing(call)["easyHunting"])

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}")
    def get_easy_hunting(self, call):
        return self.service(call, "easyHunting")["service"]

    @route("PUT", "/telephony/{billingAccount}/easyHunting/{serviceName}")
    def put_easy_hunting(self, call):
        self.service(call, "easyHunting")["service"].update(call.body)

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting")
    def get_hunting(self, call):
        return self.service(call, "easyHunting")["hunting"]

    def queue(self, call):
        """Return the queue named in the path, or the 404."""
        return find(self.service(call, "easyHunting")["queues"], "queueId", call.params["queueId"])

    def agent(self, call):
        """Return the agent named in the path, or the 404."""
        return find(self.service(call, "easyHunting")["agents"], "agentId", call.params["agentId"])

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/queue")
    def list_queues(self, call):
        return sorted(q["queueId"] for q in self.service(call, "easyHunting")["queues"])

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/queue/{queueId}")
    def get_queue(self, call):
        return self.queue(call)

    @route("PUT", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/queue/{queueId}")
    def put_queue(self, call):
        self.queue(call).update(call.body)

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/queue/{queueId}/agent")
    def list_queue_agents(self, call):
        queue_id = self.queue(call)["queueId"]
        links = [link for link in self.service(call, "easyHunting")["agentQueues"] if link["queueId"] == queue_id]
        return [link["agentId"] for link in sorted(links, key=lambda link: (link["position"], link["agentId"]))]

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/queue/{queueId}/liveCalls")
    def list_live_calls(self, call):
        queue_id = self.queue(call)["queueId"]
        return [c["id"] for c in self.service(call, "easyHunting")["liveCalls"] if c["queueId"] == queue_id]

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/queue/{queueId}/liveCalls/{id}")
    def get_live_call(self, call):
        queue_id = self.queue(call)["queueId"]
        calls = [c for c in self.service(call, "easyHunting")["liveCalls"] if c["queueId"] == queue_id]
        return find(calls, "id", call.params["id"])

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/queue/{queueId}/liveStatistics")
    def get_live_statistics(self, call):
        return self.queue(call)["statistics"]

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/agent")
    def list_agents(self, call):
        return sorted(a["agentId"] for a in self.service(call, "easyHunting")["agents"])

    def check_agent_number(self, service, number, agent_id=None):
        """Refuse a second agent with the same number in a group, as OVH does."""
        if any(a["number"] == number and a["agentId"] != agent_id for a in service["agents"]):
            raise ApiError(400, f"An agent with the number {number} already exists")

    @route("POST", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/agent")
    def post_agent(self, call):
        service = self.service(call, "easyHunting")
        self.check_agent_number(service, call.body["number"])
        created = {
            "agentId": self.new_id("agentId"),
            "type": "external",
            "breakStatus": None,
            "description": None,
            **call.body,
        }
        service["agents"].append(created)
        return created

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/agent/{agentId}")
    def get_agent(self, call):
        return self.agent(call)

    @route("PUT", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/agent/{agentId}")
    def put_agent(self, call):
        found = self.agent(call)
        if "number" in call.body:
            self.check_agent_number(self.service(call, "easyHunting"), call.body["number"], found["agentId"])
        found.update(call.body)

    @route("DELETE", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/agent/{agentId}")
    def delete_agent(self, call):
        service = self.service(call, "easyHunting")
        found = self.agent(call)
        service["agents"].remove(found)
        service["agentQueues"] = [link for link in service["agentQueues"] if link["agentId"] != found["agentId"]]

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/agent/{agentId}/queue")
    def list_agent_queues(self, call):
        agent_id = self.agent(call)["agentId"]
        return sorted(
            link["queueId"] for link in self.service(call, "easyHunting")["agentQueues"] if link["agentId"] == agent_id
        )

    @route("POST", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/agent/{agentId}/queue")
    def post_agent_queue(self, call):
        service = self.service(call, "easyHunting")
        agent_id = self.agent(call)["agentId"]
        queue_id = find(service["queues"], "queueId", call.body["queueId"])["queueId"]
        if any(link["agentId"] == agent_id and link["queueId"] == queue_id for link in service["agentQueues"]):
            raise ApiError(400, f"The agent {agent_id} is already in the queue {queue_id}")
        link = {"agentId": agent_id, "queueId": queue_id, "position": call.body["position"]}
        service["agentQueues"].append(link)
        return link

    def agent_queue(self, call):
        """Return the agent-queue link named in the path, or the 404."""
        agent_id = self.agent(call)["agentId"]
        links = [link for link in self.service(call, "easyHunting")["agentQueues"] if link["agentId"] == agent_id]
        return find(links, "queueId", call.params["queueId"])

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/agent/{agentId}/queue/{queueId}")
    def get_agent_queue(self, call):
        return self.agent_queue(call)

    @route("PUT", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/agent/{agentId}/queue/{queueId}")
    def put_agent_queue(self, call):
        self.agent_queue(call).update(call.body)

    @route("DELETE", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/agent/{agentId}/queue/{queueId}")
    def delete_agent_queue(self, call):
        self.service(call, "easyHunting")["agentQueues"].remove(self.agent_queue(call))

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}/timeConditions")
    def get_time_conditions(self, call):
        return self.service(call, "easyHunting")["timeConditions"]

    @route("PUT", "/telephony/{billingAccount}/easyHunting/{serviceName}/timeConditions")
    def put_time_conditions(self, call):
        settings = self.service(call, "easyHunting")["timeConditions"]
        wanted = {**settings, **call.body}
        for slot in ("unavailable", "slot1", "slot2", "slot3"):
            if wanted[f"{slot}Type"] == "number" and not wanted[f"{slot}Number"]:
                raise ApiError(400, f"Invalid parameter: property '{slot}Number' is missing for the type 'number'")
        settings.update(call.body)

    def check_condition(self, service, condition):
        """Refuse an empty time range or a duplicate condition, as OVH does."""
        if not condition["timeFrom"] < condition["timeTo"]:
            raise ApiError(400, "Invalid parameter: property 'timeFrom' must be before 'timeTo'")
        fields = ("weekDay", "timeFrom", "timeTo", "policy")
        for other in service["conditions"]:
            if other is not condition and all(other[f] == condition[f] for f in fields):
                raise ApiError(400, f"This time condition already exists (conditionId = {other['conditionId']})")

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}/timeConditions/conditions")
    def list_conditions(self, call):
        return sorted(
            c["conditionId"]
            for c in self.service(call, "easyHunting")["conditions"]
            if call.query.get("policy", c["policy"]) == c["policy"]
        )

    @route("POST", "/telephony/{billingAccount}/easyHunting/{serviceName}/timeConditions/conditions")
    def post_condition(self, call):
        service = self.service(call, "easyHunting")
        condition = dict(call.body)
        self.check_condition(service, condition)
        condition["conditionId"] = self.new_id("conditionId")
        service["conditions"].append(condition)
        return condition

    def condition(self, call):
        """Return the time condition named in the path, or the 404."""
        return find(self.service(call, "easyHunting")["conditions"], "conditionId", call.params["conditionId"])

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}/timeConditions/conditions/{conditionId}")
    def get_condition(self, call):
        return self.condition(call)

    @route("PUT", "/telephony/{billingAccount}/easyHunting/{serviceName}/timeConditions/conditions/{conditionId}")
    def put_condition(self, call):
        found = self.condition(call)
        self.check_condition(self.service(call, "easyHunting"), {**found, **call.body})
        found.update(call.body)

    @route("DELETE", "/telephony/{billingAccount}/easyHunting/{serviceName}/timeConditions/conditions/{conditionId}")
    def delete_condition(self, call):
        self.service(call, "easyHunting")["conditions"].remove(self.condition(call))
