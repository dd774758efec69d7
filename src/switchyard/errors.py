"""The one error hierarchy. Every HTTP error leaves the gateway as an OpenAI error envelope.

    SwitchyardError                      (500 internal_error)
    ├── ConfigError                      bad configuration: file, line, key path
    ├── RequestError                     (400 invalid_request_error)
    │   ├── InvalidJSONError             malformed body
    │   ├── MissingFieldError            required field absent; names it
    │   ├── UnsupportedMediaTypeError    (415) wrong content type
    │   ├── PayloadTooLargeError         (413) body over the limit
    │   ├── ModelNotFoundError           (404) lists valid names
    │   └── ContentPolicyError           a block decision matched
    ├── AuthenticationError              (401)
    ├── OverloadedError                  (503) queue full / no capacity; Retry-After
    ├── NoHealthyEndpointError           (503) every replica of every candidate is down
    └── UpstreamError                    (502) retryable: the model server misbehaved
        ├── UpstreamConnectError         connection refused / reset
        ├── UpstreamTimeoutError         (504) attempt or total timeout
        ├── UpstreamStatusError          upstream answered 429/5xx (or 4xx: not retryable)
        └── UpstreamProtocolError        upstream answered garbage

Upstream library exceptions (httpx) are translated only in `pools/backend.py`.
"""

from __future__ import annotations

from typing import Any


class SwitchyardError(Exception):
    status: int = 500
    error_type: str = "internal_error"
    code: str | None = None
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.retry_after = retry_after

    def envelope(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class ConfigError(SwitchyardError):
    error_type = "config_error"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


class RequestError(SwitchyardError):
    status = 400
    error_type = "invalid_request_error"


class InvalidJSONError(RequestError):
    code = "invalid_json"


class MissingFieldError(RequestError):
    code = "missing_required_parameter"


class UnsupportedMediaTypeError(RequestError):
    status = 415
    code = "unsupported_media_type"


class PayloadTooLargeError(RequestError):
    status = 413
    code = "payload_too_large"


class ModelNotFoundError(RequestError):
    status = 404
    code = "model_not_found"


class ContentPolicyError(RequestError):
    code = "content_policy_violation"


class AuthenticationError(SwitchyardError):
    status = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class OverloadedError(SwitchyardError):
    status = 503
    error_type = "overloaded_error"
    code = "overloaded"
    retryable = True


class NoHealthyEndpointError(SwitchyardError):
    status = 503
    error_type = "service_unavailable"
    code = "no_healthy_endpoint"


class UpstreamError(SwitchyardError):
    status = 502
    error_type = "upstream_error"
    code = "bad_gateway"
    retryable = True
    kind = "error"


class UpstreamConnectError(UpstreamError):
    kind = "connect"


class UpstreamTimeoutError(UpstreamError):
    status = 504
    code = "upstream_timeout"
    kind = "timeout"


class UpstreamProtocolError(UpstreamError):
    code = "bad_upstream_response"
    kind = "protocol"


class UpstreamStatusError(UpstreamError):
    kind = "status"

    def __init__(
        self,
        message: str,
        *,
        upstream_status: int,
        body: bytes = b"",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.upstream_status = upstream_status
        self.body = body
        self.retryable = upstream_status == 429 or upstream_status >= 500
        # Non-retryable upstream 4xx answers are passed to the client with their own status;
        # an upstream that stays rate-limited is reported as 429 (with its Retry-After).
        if upstream_status == 429:
            self.status, self.code, self.error_type = 429, "rate_limited", "rate_limit_error"
        else:
            self.status = 502 if self.retryable else upstream_status
