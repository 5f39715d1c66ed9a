"""The consent page both emulators show, and a reader for scripted browsers.

API:

- :class:`ConsentPage` describes the page: provider and client names, the account e-mail (an
  editable field, pre-filled), whether a password is asked, the scopes (each optionally a
  checkbox the user may untick, as Google's granular consent allows), the form ``action`` and
  the hidden fields to post back (the original authorization parameters).
- :func:`render_consent_page` renders it as plain, accessible HTML: one ``<form method="post">``,
  labelled inputs, and two submit buttons named ``decision`` with values ``allow`` and ``deny``.
  No JavaScript. When ``granular`` is set the form also posts ``granular=1`` and one
  ``granted_scope`` per ticked scope.
- :func:`read_consent_form` parses such a page back into a :class:`ConsentForm` whose
  :meth:`ConsentForm.submission` builds the form body a browser would send.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from html.parser import HTMLParser

DECISION_FIELD = "decision"
GRANTED_SCOPE_FIELD = "granted_scope"
GRANULAR_FIELD = "granular"


@dataclass(frozen=True)
class ScopeChoice:
    """One requested scope and the sentence shown for it."""

    scope: str
    description: str
    optional: bool = False


@dataclass(frozen=True)
class ConsentPage:
    """Everything the consent page shows and posts back."""

    provider: str
    client_name: str
    account_email: str
    scopes: Sequence[ScopeChoice]
    action: str
    hidden_fields: Mapping[str, str] = field(default_factory=dict)
    ask_password: bool = True
    granular: bool = False
    error: str | None = None


def _scope_item(choice: ScopeChoice, index: int, granular: bool) -> str:
    text = f"{escape(choice.description)} <code>{escape(choice.scope)}</code>"
    if not (granular and choice.optional):
        return f"<li>{text}</li>"
    box_id = f"scope-{index}"
    return (
        f'<li><input type="checkbox" id="{box_id}" name="{GRANTED_SCOPE_FIELD}" '
        f'value="{escape(choice.scope)}" checked> <label for="{box_id}">{text}</label></li>'
    )


def render_consent_page(page: ConsentPage) -> str:
    """The consent page as a complete HTML document."""
    hidden = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in page.hidden_fields.items()
    )
    if page.granular:
        hidden += f'<input type="hidden" name="{GRANULAR_FIELD}" value="1">'
    scopes = "".join(_scope_item(choice, i, page.granular) for i, choice in enumerate(page.scopes))
    error = f'<p role="alert" class="error">{escape(page.error)}</p>' if page.error else ""
    password = (
        '<p><label for="password">Password</label> '
        '<input type="password" id="password" name="password" autocomplete="current-password"></p>'
        if page.ask_password
        else ""
    )
    title = f"Sign in with {escape(page.provider)} (sandbox)"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>'
        "<style>body{font-family:sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem}"
        ".error{color:#a00}button{margin-right:1rem;padding:.5rem 1.5rem}</style></head><body>"
        f"<main><h1>{title}</h1>{error}"
        f'<form method="post" action="{escape(page.action)}">{hidden}'
        '<p><label for="email">Account e-mail</label> '
        f'<input type="email" id="email" name="email" value="{escape(page.account_email)}" '
        'autocomplete="username" required></p>'
        f"{password}"
        f"<p><strong>{escape(page.client_name)}</strong> wants to:</p>"
        f'<ul aria-label="Requested permissions">{scopes}</ul>'
        f'<p><button type="submit" name="{DECISION_FIELD}" value="allow">Allow</button>'
        f'<button type="submit" name="{DECISION_FIELD}" value="deny">Deny</button></p>'
        "</form></main></body></html>"
    )


@dataclass
class ConsentForm:
    """A parsed consent form: where it posts and what its inputs hold."""

    action: str = ""
    method: str = "get"
    fields: list[tuple[str, str]] = field(default_factory=list)
    checkboxes: list[tuple[str, str, bool]] = field(default_factory=list)
    buttons: list[tuple[str, str]] = field(default_factory=list)

    def submission(
        self,
        decision: str,
        *,
        email: str | None = None,
        password: str | None = None,
        untick: Iterable[str] = (),
    ) -> list[tuple[str, str]]:
        """The body a browser posts after the user fills the form and clicks ``decision``."""
        unticked = set(untick)
        body: list[tuple[str, str]] = []
        for name, value in self.fields:
            if name == "email" and email is not None:
                value = email
            elif name == "password" and password is not None:
                value = password
            body.append((name, value))
        body += [(n, v) for n, v, checked in self.checkboxes if checked and v not in unticked]
        if (DECISION_FIELD, decision) not in self.buttons:
            raise ValueError(f"the form has no {decision!r} button")
        body.append((DECISION_FIELD, decision))
        return body


class _FormReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.form = ConsentForm()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.form.action = values.get("action", "")
            self.form.method = values.get("method", "get").lower()
        elif tag == "input" and "name" in values:
            kind = values.get("type", "text")
            if kind == "checkbox":
                self.form.checkboxes.append((values["name"], values.get("value", "on"), "checked" in values))
            else:
                self.form.fields.append((values["name"], values.get("value", "")))
        elif tag == "button" and "name" in values:
            self.form.buttons.append((values["name"], values.get("value", "")))


def read_consent_form(html: str) -> ConsentForm:
    """Parse the first form of a consent page."""
    reader = _FormReader()
    reader.feed(html)
    return reader.form
