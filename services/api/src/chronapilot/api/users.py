"""``/v1/users``: the end-users of an application, to whom connections belong."""

from __future__ import annotations

from functools import partial

from aiohttp import web

from chronapilot.api.auth import current_application
from chronapilot.api.errors import not_found
from chronapilot.api.pagination import page
from chronapilot.api.requests import path_id, read_json, read_query
from chronapilot.api.schemas import CreateUserBody, ListUsersQuery, UserObject, dump
from chronapilot.common.ids import new_id
from chronapilot.common.models import User
from chronapilot.common.runtime import RUNTIME
from chronapilot.common.store import Document


def render(raw: Document) -> dict[str, object]:
    user = User.from_mongo(raw)
    return dump(
        UserObject(
            id=user.id,
            external_id=user.external_id,
            metadata={k: str(v) for k, v in user.metadata.items()},
            created_at=user.created_at,
        )
    )


async def create_user(request: web.Request) -> web.Response:
    body = await read_json(request, CreateUserBody)
    runtime = request.app[RUNTIME]
    user = User(
        id=new_id("usr"),
        application_id=current_application(request).id,
        external_id=body.external_id,
        metadata=body.metadata,
        created_at=runtime.clock.now(),
    )
    await runtime.repos.users.create(user)
    return web.json_response(render(user.to_mongo()), status=201)


async def get_user(request: web.Request) -> web.Response:
    user_id = path_id(request, "usr", "user")
    raw = await request.app[RUNTIME].repos.users.of_application(current_application(request).id, user_id)
    if raw is None:
        raise not_found("user")
    return web.json_response(render(raw))


async def list_users(request: web.Request) -> web.Response:
    query = read_query(request, ListUsersQuery)
    flt: dict[str, object] = {"application_id": current_application(request).id}
    if query.external_id is not None:
        flt["external_id"] = query.external_id
    users = request.app[RUNTIME].repos.users
    body = await page(partial(users.page, flt), query, url="/v1/users", render=render)
    return web.json_response(body)


async def user_exists(request: web.Request, user_id: str) -> bool:
    return await request.app[RUNTIME].repos.users.exists(current_application(request).id, user_id)
