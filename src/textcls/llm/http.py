"""An OpenAI-compatible chat endpoint as a classifier (a local server such as vLLM or llama.cpp, or an API).

One request per text: the instruction as system prompt, the demonstrations as user/assistant
turns, ``temperature: 0``. With ``structured_output`` the request carries a JSON schema whose
``label`` must be one of the class names (``response_format``), so a server that honours it
can only answer with a valid label; any other answer is matched to a class name
(``prompting.parse_label``) and, failing that, counted as invalid and mapped to the most
frequent train class, so every prediction is still a valid label.

The API key is read from the environment variable named in params (``api_key_env``) and only
ever placed in the Authorization header: never in params, metrics, logs or error messages.
"""

from __future__ import annotations

import http.client
import json
import os
import urllib.error
import urllib.request

from textcls.llm import prompting
from textcls.errors import TextclsError


class ChatClassifier:
    def __init__(self, url: str, model: str, api_key_env: str | None, timeout_s: float, structured_output: bool):
        self.endpoint = url.rstrip("/") + "/chat/completions"
        self.model, self.timeout_s, self.structured_output = model, timeout_s, structured_output
        self._api_key = None
        if api_key_env:
            self._api_key = (os.environ.get(api_key_env) or "").strip()  # a .env file may leave a newline
            if any(ord(c) < 32 or ord(c) == 127 for c in self._api_key):
                raise TextclsError(f"The environment variable {api_key_env} (llms.*.api_key_env) holds control "
                                   "characters, which cannot go into an HTTP header. Fix: export it again "
                                   "without line breaks.")
            if not self._api_key:
                raise TextclsError(f"The environment variable {api_key_env} (llms.*.api_key_env) is not set. "
                                   f"Fix: export {api_key_env}=<your key> before `dvc repro`; never put the key "
                                   "in params.yaml.")

    def request_body(self, messages: list[dict], label_names: list[str]) -> dict:
        body = {"model": self.model, "messages": messages, "temperature": 0, "max_tokens": 32}
        if self.structured_output:
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "classification", "strict": True, "schema": prompting.label_schema(label_names)}}
        return body

    def complete(self, messages: list[dict], label_names: list[str]) -> tuple[str, int]:
        """The answer text and the tokens the endpoint billed (prompt + completion)."""
        data = json.dumps(self.request_body(messages, label_names)).encode()
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(self.endpoint, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310 (http(s) only)
                payload = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as err:
            raise TextclsError(f"The LLM endpoint {self.endpoint} answered HTTP {err.code} ({err.reason}). "
                               "Fix: check llms.*.url/model, and the key in the environment variable named by "
                               "api_key_env.") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as err:
            reason = getattr(err, "reason", err)
            raise TextclsError(f"Cannot reach the LLM endpoint {self.endpoint} ({reason}). Fix: start the server "
                               "or correct llms.*.url; or remove this llms: entry. No metrics were written.") from None
        except ValueError:
            raise TextclsError(f"The LLM endpoint {self.endpoint} did not answer with JSON. Fix: point llms.*.url "
                               "at an OpenAI-compatible API base (ending in /v1).") from None
        try:
            answer = payload["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise TextclsError(f"The LLM endpoint {self.endpoint} answered without choices[0].message.content. "
                               "Fix: use an OpenAI-compatible chat completions API.") from None
        usage = payload.get("usage") or {}
        return answer, int(usage.get("prompt_tokens", 0)) + int(usage.get("completion_tokens", 0))
