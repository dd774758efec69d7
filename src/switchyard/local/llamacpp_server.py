"""`python -m switchyard.local.llamacpp_server FLAGS` — the llama-cpp-python OpenAI server, adapted
for running behind the gateway. Takes exactly the flags of `python -m llama_cpp.server`.

Two differences, both found with a real model behind the gateway:

- `GET /v1/models` answers at once. llama-cpp-python puts every route that touches the model,
  `/v1/models` included, behind one lock, so the gateway's health check would time out during
  any long generation and mark a busy server as down.
- `interrupt_requests` defaults to off. With it on, a request that waits for the lock (another
  chat request, or a health check) cancels the generation in progress mid-stream. The gateway
  already queues requests for a server that answers one at a time.
"""

from __future__ import annotations

import argparse
from typing import Any


def _answer_models_without_lock(app: Any, model_ids: list[str], authenticate: Any) -> None:
    from fastapi import Depends

    async def list_models() -> dict[str, Any]:
        data = [{"id": i, "object": "model", "owned_by": "llama.cpp", "permissions": []}
                for i in model_ids]
        return {"object": "list", "data": data}

    app.add_api_route("/v1/models", list_models, methods=["GET"],
                      dependencies=[Depends(authenticate)])
    app.router.routes.insert(0, app.router.routes.pop())  # match before the locked route


def main(argv: list[str] | None = None) -> None:
    import uvicorn
    from llama_cpp.server.app import authenticate, create_app
    from llama_cpp.server.cli import add_args_from_model, parse_model_from_args
    from llama_cpp.server.settings import ModelSettings, ServerSettings, Settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add_args_from_model(parser, Settings)
    args = parser.parse_args(argv)
    if args.interrupt_requests is None:
        args.interrupt_requests = False
    # llama-cpp-python annotates this helper as returning the class it is given; it returns an
    # instance of it.
    server_settings: Any = parse_model_from_args(ServerSettings, args)
    model_settings: Any = parse_model_from_args(ModelSettings, args)
    app = create_app(server_settings=server_settings, model_settings=[model_settings])
    model_id = model_settings.model_alias or model_settings.model
    _answer_models_without_lock(app, [str(model_id)], authenticate)
    uvicorn.run(app, host=server_settings.host, port=server_settings.port, log_level="warning")


if __name__ == "__main__":
    main()
