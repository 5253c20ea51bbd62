"""JupyterHub identity for the kz service: requests carry a hub token (a user's, or that of
their single-user server or kernel), which the hub vouches for; the user must hold the scope
to access this service. Hub admins are kz admins; hub groups decide what is shared with whom."""

from __future__ import annotations

from dataclasses import dataclass, field

from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.auth.identity import IdentityProvider, User
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Instance, default

AUTH_RESOURCE = "kz"  # what Jupyter's authorizer is asked about for every kz route
TOKEN_CACHE_SECONDS = 5


@dataclass
class HubUser(User):
    """A hub user, with what the hub says of them."""

    hub_admin: bool = False
    hub_groups: tuple[str, ...] = field(default_factory=tuple)


class HubIdentityProvider(IdentityProvider):
    """Authenticate every request by its hub token (`Authorization: token|Bearer ...`)."""

    hub_auth = Instance("jupyterhub.services.auth.HubAuth")

    @default("hub_auth")
    def _default_hub_auth(self):
        from jupyterhub.services.auth import HubAuth

        # A short cache: a revoked or expired token stops working within seconds.
        return HubAuth(cache_max_age=TOKEN_CACHE_SECONDS, log=self.log)

    @property
    def auth_enabled(self) -> bool:
        """Always: there is no anonymous access."""
        return True

    @property
    def login_available(self) -> bool:
        """API clients bring tokens; there is no login page."""
        return False

    def get_user_cookie(self, handler: web.RequestHandler) -> None:
        """Cookies never authenticate: only hub tokens do."""
        return None

    def set_login_cookie(self, handler: web.RequestHandler, user: User) -> None:
        """Set no cookie."""

    async def get_user_token(self, handler: web.RequestHandler) -> HubUser | None:
        """The hub user a valid token belongs to, if they may use this service."""
        token = self.get_token(handler)
        if not token:
            return None
        model = await self.hub_auth.user_for_token(token, use_cache=True, sync=False)
        if not model or model.get("kind", "user") != "user":
            return None
        if not self.hub_auth.check_scopes(self.hub_auth.access_scopes, model):
            self.log.warning("%s has no scope to use this service", model.get("name"))
            return None
        return HubUser(
            username=model["name"],
            hub_admin=bool(model.get("admin")),
            hub_groups=tuple(model.get("groups") or ()),
        )

    async def group_exists(self, name: str) -> bool:
        """Whether the hub has a group of that name (the service needs read:groups)."""
        request = HTTPRequest(
            f"{self.hub_auth.api_url}/groups/{name}",
            headers={"Authorization": f"token {self.hub_auth.api_token}"},
        )
        try:
            await AsyncHTTPClient().fetch(request)
        except HTTPClientError as error:
            if error.code == 404:
                return False
            message = f"The hub did not answer about group '{name}': {error}"
            raise web.HTTPError(502, message) from None
        return True


class KzOnlyAuthorizer(Authorizer):
    """The service serves the kz API only: Jupyter's own APIs (kernels, contents, terminals,
    sessions) are refused, so no hub user can run code or read files as the service."""

    def is_authorized(self, handler: web.RequestHandler, user: User, action: str, resource: str):
        """Allow the kz resource, nothing else."""
        return resource == AUTH_RESOURCE
