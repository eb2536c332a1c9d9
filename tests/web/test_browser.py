"""The trading page in a real headless Chromium (Debian's `chromium`, driven by Playwright).

A real `bourse serve` runs in a subprocess (embedded mode: SQLite in a tmp dir, no agents, market
always open) and serves the built bundle from api/static. Two users in two browser contexts:

1. register from the page and place crossing limit orders from the ticket;
2. both see the trade on the tape, the book change and their portfolio update without a reload;
3. one amends and then cancels a resting order from the open-orders list;
4. the equity chart, stats panel and leaderboard render (and the opt-in puts the user on the board).

Screenshots of the main views go to test-artifacts/web/ (desktop 1440x900 and phone 390x844).

Set BOURSE_WEB_TEST_URL to drive an already running server instead (then BOURSE_WEB_TEST_DB, its
database URL, lets the test give the seller shares).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

playwright_sync = pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
STATIC = ROOT / "api" / "static"
ARTIFACTS = ROOT / "test-artifacts" / "web"
CHROMIUM = os.environ.get("BOURSE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
LIVE = 15_000  # ms allowed for a pushed update to reach the page
PASSWORD = "correct-horse-battery-staple"

pytestmark = pytest.mark.timeout(300)
expect.set_options(timeout=LIVE)


# ---------------------------------------------------------------- server and bundle


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str | None = None) -> tuple[int, object]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as res:
            body = res.read()
            return res.status, json.loads(body) if body else None
    except urllib.error.HTTPError as e:
        return e.code, None


@dataclass
class Server:
    url: str
    db_url: str | None

    def api(self, path: str, token: str | None = None) -> tuple[int, object]:
        return _get(f"{self.url}/api/v1{path}", token)

    def grant_shares(self, email: str, symbol: str, qty: int, price_cents: int) -> None:
        """Give an account shares (people start with cash only and nobody sells short): a ledger deposit."""
        if self.db_url is None:
            pytest.fail("BOURSE_WEB_TEST_DB (the external server's database URL) is needed to grant shares")
        from sqlalchemy import create_engine, insert, select, update
        from sqlalchemy.orm import Session

        from schema.models import Account, LedgerEntry, Position, User

        engine = create_engine(self.db_url)
        try:
            with Session(engine) as s:
                account_id = s.scalar(
                    select(Account.id).join(User, User.id == Account.user_id).where(User.email == email)
                )
                assert account_id is not None, f"no account for {email}"
                pos = s.get(Position, (account_id, symbol))
                if pos is None:
                    s.execute(
                        insert(Position).values(
                            account_id=account_id,
                            symbol=symbol,
                            qty=qty,
                            held_qty=0,
                            cost_basis=qty * price_cents,
                            realized_pnl=0,
                        )
                    )
                else:
                    s.execute(
                        update(Position)
                        .where(Position.account_id == account_id, Position.symbol == symbol)
                        .values(qty=Position.qty + qty, cost_basis=Position.cost_basis + qty * price_cents)
                    )
                s.execute(
                    insert(LedgerEntry).values(
                        account_id=account_id,
                        kind="deposit",
                        symbol=symbol,
                        qty_delta=qty,
                        created_at=datetime.now(UTC),
                    )
                )
                s.commit()
        finally:
            engine.dispose()


@pytest.fixture(scope="session")
def web_bundle() -> Path:
    """The built page in api/static; built here (npm ci && npm run build) when missing."""
    if not (STATIC / "index.html").exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("api/static/index.html is missing and npm is not installed to build it")
        if not (WEB / "node_modules").exists():
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=WEB, check=True)
        subprocess.run([npm, "run", "build"], cwd=WEB, check=True)
    assert (STATIC / "index.html").exists()
    return STATIC


def _serve_command(port: int) -> list[str]:
    exe = Path(sys.executable).parent / "bourse"
    if exe.exists():
        return [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)]
    return [sys.executable, "-m", "bourse", "serve", "--host", "127.0.0.1", "--port", str(port)]


@pytest.fixture(scope="session")
def server(web_bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    """A quiet market: no agents, so every order and trade on the page is the test's."""
    external = os.environ.get("BOURSE_WEB_TEST_URL")
    if external:
        yield Server(external.rstrip("/"), os.environ.get("BOURSE_WEB_TEST_DB"))
        return
    yield from _run_server(tmp_path_factory, agents=False)


@pytest.fixture(scope="session")
def live_server(web_bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    """A busy market: the demo agents quote and trade on every symbol."""
    yield from _run_server(tmp_path_factory, agents=True)


def _run_server(tmp_path_factory: pytest.TempPathFactory, agents: bool):
    tmp = tmp_path_factory.mktemp("bourse-web")
    port = _free_port()
    db_url = f"sqlite:///{tmp / 'bourse.db'}"
    env = {
        **os.environ,
        "BOURSE_DATABASE_URL": db_url,
        "BOURSE_AGENTS": "true" if agents else "false",
        "BOURSE_MARKET_HOURS": "always",
        "BOURSE_ENV": "test",
        "BOURSE_HOST": "127.0.0.1",
        "BOURSE_PORT": str(port),
    }
    env.pop("BOURSE_REDIS_URL", None)
    log = open(tmp / "server.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(_serve_command(port), cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"bourse serve exited with {proc.returncode}:\n{(tmp / 'server.log').read_text()[-4000:]}"
                )
            try:
                if _get(f"{url}/api/v1/markets")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"bourse serve did not answer in time:\n{(tmp / 'server.log').read_text()[-4000:]}"
                )
            time.sleep(0.3)
        yield Server(url, db_url)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp / "server.log", ARTIFACTS / f"server{'-agents' if agents else ''}.log")


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


# ---------------------------------------------------------------- page helpers


class Trader:
    """One user in one browser context."""

    def __init__(self, browser: Browser, server: Server, name: str, viewport: dict = DESKTOP, **ctx) -> None:
        self.server = server
        self.name = name
        self.email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
        self.display_name = f"{name}-{uuid.uuid4().hex[:4]}"
        self.context: BrowserContext = browser.new_context(viewport=viewport, **ctx)
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        # Uncaught errors fail the test; HTTP error statuses (an expected 422) are not script errors.
        self.page.on(
            "console",
            lambda m: (
                m.type == "error"
                and "Failed to load resource" not in m.text
                and self.errors.append(f"console: {m.text}")
            ),
        )
        self.page.set_default_timeout(LIVE)

    def t(self, testid: str):
        return self.page.get_by_test_id(testid)

    def open(self) -> None:
        self.page.goto(self.server.url + "/")
        expect(self.t("symbol-list")).to_be_visible()

    def register(self) -> None:
        self.open()
        self.t("auth-tab-register").click()
        self.t("login-email").fill(self.email)
        self.t("login-password").fill(PASSWORD)
        self.t("register-display-name").fill(self.display_name)
        self.t("register-submit").click()
        expect(self.t("ticket-submit")).to_be_visible()
        expect(self.t("logout")).to_be_visible()
        expect(self.t("socket-status")).to_have_attribute("data-connected", "true")

    def login(self, email: str) -> None:
        self.email = email
        self.open()
        self.t("login-email").fill(email)
        self.t("login-password").fill(PASSWORD)
        self.t("login-submit").click()
        expect(self.t("ticket-submit")).to_be_visible()

    def select(self, symbol: str) -> None:
        self.t(f"symbol-{symbol}").click()
        expect(self.t("ticket-symbol")).to_have_text(symbol)
        expect(self.t("book-spread")).not_to_contain_text("Loading")

    def tab(self, name: str) -> None:
        self.t(f"tab-{name}").click()

    def order(self, side: str, qty: int, price: str, type_: str = "limit", tif: str = "gtc") -> None:
        self.t(f"ticket-side-{side}").click()
        self.t("ticket-type").select_option(type_)
        self.t("ticket-tif").select_option(tif)
        self.t("ticket-qty").fill(str(qty))
        if type_ in ("limit", "stop_limit"):
            self.t("ticket-price").fill(price)
        self.t("ticket-submit").click()

    def shot(self, name: str, full_page: bool = True) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        if full_page:  # from the top, or the sticky top bar is drawn mid-page
            self.page.evaluate("() => window.scrollTo(0, 0)")
        self.page.wait_for_timeout(300)  # let charts paint
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)

    def close(self) -> None:
        self.context.close()


def money(x: Decimal) -> str:
    return f"${x:,.2f}"


def price_text(x: Decimal) -> str:
    return f"{x:,.2f}"


def level(trader: Trader, side: str, price: Decimal):
    return trader.t(f"book-{side}").locator(f'[data-price="{price:.2f}"]')


# ---------------------------------------------------------------- the scenario


def test_two_traders_trade_from_the_page(server: Server, browser: Browser) -> None:
    status, markets = server.api("/markets")
    assert status == 200 and markets, "GET /markets returned no instruments"
    market = markets[0]
    symbol = market["symbol"]
    ref = Decimal(market["last"] or market["prev_close"] or market["band_low"] or "100")
    tick = Decimal(market["tick"])
    price = (ref / tick).to_integral_value() * tick  # on the tick, inside the band
    low = price - 20 * tick  # a resting bid that will be amended and canceled
    qty, rest_qty = 5, 2
    start = Decimal("100000.00")

    buyer = Trader(browser, server, "buyer")
    seller = Trader(browser, server, "seller")
    try:
        buyer.register()
        seller.register()
        server.grant_shares(seller.email, symbol, 10, int(price * 100))
        for tr in (buyer, seller):
            tr.select(symbol)
            tr.tab("orders")

        # Client-side checks: an off-tick price never leaves the page.
        buyer.order("buy", qty, f"{price + tick / 2}")
        expect(buyer.t("ticket-price-error")).to_contain_text("tick")
        # A server rejection shows the server's message: the buyer has no shares to sell.
        buyer.order("sell", qty, f"{price}")
        expect(buyer.t("ticket-error")).to_be_visible()
        expect(buyer.t("ticket-error")).not_to_be_empty()
        buyer.shot("ticket-rejected", full_page=False)

        # The buyer rests a bid at `price` and another lower one; both sides see them on the ladder.
        buyer.order("buy", qty, f"{price}")
        expect(buyer.t("ticket-result")).to_be_visible()
        expect(buyer.t("ticket-estimate")).to_contain_text(money(price * qty))
        buyer.order("buy", rest_qty, f"{low}")
        expect(buyer.t("open-order-row")).to_have_count(2)
        for tr in (buyer, seller):
            expect(level(tr, "bids", price)).to_be_visible()
            expect(level(tr, "bids", low)).to_be_visible()
        expect(buyer.t("cash-held")).to_have_text(money(price * qty + low * rest_qty))
        buyer.shot("buyer-resting")

        # The seller clicks the bid on the ladder (fills the ticket price) and sells into it.
        seller.t("ticket-side-sell").click()
        level(seller, "bids", price).click()
        expect(seller.t("ticket-price")).to_have_value(f"{price:.2f}")
        seller.order("sell", qty, f"{price:.2f}")
        expect(seller.t("ticket-result")).to_be_visible()

        # Both see the trade, the book change and their portfolio, without a reload.
        for tr in (buyer, seller):
            expect(tr.t("tape").get_by_test_id("tape-row").first).to_contain_text(price_text(price))
            expect(level(tr, "bids", price)).to_have_count(0)
            expect(level(tr, "bids", low)).to_be_visible()
            expect(tr.t("quote-last")).to_have_text(price_text(price))
        expect(buyer.t("cash-available")).to_have_text(money(start - price * qty - low * rest_qty))
        expect(buyer.t("cash-held")).to_have_text(money(low * rest_qty))
        expect(seller.t("cash-available")).to_have_text(money(start + price * qty))
        expect(seller.t("cash-held")).to_have_text(money(Decimal(0)))
        expect(buyer.t("open-order-row")).to_have_count(1)
        expect(seller.t("open-orders-empty")).to_be_visible()

        buyer.tab("fills")
        expect(buyer.t("fill-row")).to_have_count(1)
        expect(buyer.t("fill-row").first).to_contain_text(price_text(price))
        for tr, held in ((buyer, qty), (seller, 10 - qty)):
            tr.tab("portfolio")
            row = tr.t("positions").locator(f'[data-testid="position-row"][data-symbol="{symbol}"]')
            expect(row.get_by_test_id("position-qty")).to_have_text(str(held))
            expect(row.get_by_test_id("position-value")).to_have_text(money(price * held))
        buyer.shot("buyer-after-trade")
        seller.shot("seller-after-trade")

        # Amend the resting bid (qty 2 -> 3), then cancel it from the open-orders list.
        buyer.tab("orders")
        row = buyer.t("open-order-row").first
        row.get_by_test_id("amend-order").click()
        buyer.t("amend-qty").fill("3")
        buyer.t("amend-save").click()
        expect(buyer.t("open-order-row").first.locator("td").nth(4)).to_have_text("3")
        expect(buyer.t("cash-held")).to_have_text(money(low * 3))
        expect(level(seller, "bids", low)).to_contain_text("3")
        buyer.t("open-order-row").first.get_by_test_id("cancel-order").click()
        expect(buyer.t("open-orders-empty")).to_be_visible()
        expect(buyer.t("cash-held")).to_have_text(money(Decimal(0)))
        for tr in (buyer, seller):
            expect(level(tr, "bids", low)).to_have_count(0)
        buyer.shot("buyer-after-cancel")

        # Analytics: the equity curve and stats panel, then the leaderboard with an opt-in.
        buyer.tab("portfolio")
        expect(buyer.t("equity-chart")).to_have_attribute("data-state", re.compile("ready|empty"))
        expect(buyer.t("stats-panel")).to_have_attribute("data-state", re.compile("ready|empty"))
        history_status, _ = server.api("/account/portfolio/history?period=1M", _token(buyer))
        stats_status, _ = server.api("/account/stats", _token(buyer))
        if history_status == 200:
            expect(buyer.t("equity-chart").locator("canvas").first).to_be_visible()
        if stats_status == 200:
            expect(buyer.t("stats-panel").locator('[data-testid^="stat-"]').first).to_be_visible()
        buyer.shot("buyer-portfolio-analytics")

        buyer.tab("leaderboard")
        expect(buyer.t("leaderboard")).to_have_attribute("data-state", re.compile("ready|empty"))
        if server.api("/leaderboard?period=1M")[0] == 200:
            buyer.t("profile-display-name").fill(buyer.display_name)
            buyer.t("leaderboard-opt-in").check()
            buyer.t("profile-save").click()
            # the opt-in as ticked, not as an account refresh in between had it (it used to untick the box)
            expect(buyer.t("profile-message")).to_have_text("Saved: you are on the leaderboard")
            expect(
                buyer.t("leaderboard").get_by_test_id("leaderboard-row").filter(has_text=buyer.display_name)
            ).to_be_visible()
        buyer.shot("leaderboard")

        # Phone width: the same account in a 390x844 viewport.
        phone = Trader(
            browser, server, "phone", viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2
        )
        try:
            phone.login(buyer.email)
            phone.select(symbol)
            expect(phone.t("tape").get_by_test_id("tape-row").first).to_be_visible()
            phone.shot("phone-market")
            phone.tab("portfolio")
            phone.t("account-tabs").scroll_into_view_if_needed()
            phone.shot("phone-portfolio", full_page=False)
            assert not phone.errors, phone.errors
        finally:
            phone.close()

        # Logout leaves the page anonymous (market data only).
        seller.t("logout").click()
        expect(seller.t("login-submit")).to_be_visible()
        expect(seller.t("account-signed-out")).to_be_visible()
        seller.shot("logged-out", full_page=False)

        assert not buyer.errors, buyer.errors
        assert not seller.errors, seller.errors
    finally:
        buyer.close()
        seller.close()


def _token(trader: Trader) -> str:
    return trader.page.evaluate("() => localStorage.getItem('bourse.access_token')")


def test_expired_access_token_is_refreshed(server: Server, browser: Browser) -> None:
    """A refused access token (REST 401, Socket.IO refusal) is rotated via /auth/refresh: no new login."""
    trader = Trader(browser, server, "refresh")
    try:
        trader.register()
        old_refresh = trader.page.evaluate("() => localStorage.getItem('bourse.refresh_token')")
        trader.page.evaluate("() => localStorage.setItem('bourse.access_token', 'expired.not-a.jwt')")
        trader.page.reload()
        expect(trader.t("cash-available")).to_have_text(money(Decimal("100000")))
        expect(trader.t("socket-status")).to_have_attribute("data-connected", "true")
        assert _token(trader) != "expired.not-a.jwt"
        assert trader.page.evaluate("() => localStorage.getItem('bourse.refresh_token')") != old_refresh

        # The user room was joined with the new token: the order's events reach the page.
        status, markets = server.api("/markets")
        market = markets[-1]
        low = Decimal(market["band_low"])
        trader.select(market["symbol"])
        trader.tab("orders")
        trader.order("buy", 1, f"{low:.2f}")
        expect(trader.t("ticket-result")).to_be_visible()
        expect(trader.t("open-order-row")).to_have_count(1)
        trader.t("cancel-order").click()
        expect(trader.t("open-orders-empty")).to_be_visible()
        expect(trader.t("cash-held")).to_have_text(money(Decimal(0)))

        # Reset the account to a chosen starting cash from the account card.
        trader.t("account-reset").click()
        trader.t("reset-cash").fill("50000")
        trader.t("reset-confirm").click()
        expect(trader.t("cash-available")).to_have_text(money(Decimal("50000")))
        expect(trader.t("equity")).to_have_text(money(Decimal("50000")))
        assert not trader.errors, trader.errors
    finally:
        trader.close()


def test_live_book_matches_depth_endpoint(live_server: Server, browser: Browser) -> None:
    """With agents trading, the ladder (snapshot + deltas, resync on gaps) equals GET /depth at one seq."""
    trader = Trader(browser, live_server, "watcher")
    try:
        trader.open()
        status, markets = live_server.api("/markets")
        symbol = markets[0]["symbol"]
        trader.select(symbol)
        book = trader.t("order-book")
        expect(book).to_have_attribute("data-seq", re.compile(r"\d+"))
        expect(trader.t("book-bids").get_by_test_id("bid-level").first).to_be_visible(timeout=30_000)
        read = """() => {
            const side = (id) => [...document.querySelectorAll(`[data-testid=${id}] button[data-price]`)]
                .map((b) => [b.dataset.price, b.dataset.qty, Number(b.dataset.orders)]);
            const seq = document.querySelector('[data-testid=order-book]').dataset.seq;
            return {seq: Number(seq), bids: side('book-bids'), asks: side('book-asks').reverse()};
        }"""
        matched, deadline = 0, time.monotonic() + 60
        while matched < 5 and time.monotonic() < deadline:
            before = trader.page.evaluate(read)
            _, depth = live_server.api(f"/markets/{symbol}/depth?levels=100")
            after = trader.page.evaluate(read)
            if before["seq"] == depth["seq"] == after["seq"]:
                n = len(before["bids"]), len(before["asks"])
                rest = {
                    "bids": [[lv["price"], lv["qty"], lv["orders"]] for lv in depth["bids"][: n[0]]],
                    "asks": [[lv["price"], lv["qty"], lv["orders"]] for lv in depth["asks"][: n[1]]],
                }
                assert (before["bids"], before["asks"]) == (rest["bids"], rest["asks"]), f"seq {depth['seq']}"
                assert n[0] == min(12, len(depth["bids"])) and n[1] == min(12, len(depth["asks"]))
                matched += 1
                trader.page.wait_for_timeout(400)
            else:
                trader.page.wait_for_timeout(50)
        assert matched >= 5, (
            f"the page's book and GET /depth never agreed on a sequence number ({matched} checks)"
        )
        expect(trader.t("tape").get_by_test_id("tape-row").first).to_be_visible()
        trader.shot("live-market", full_page=False)
        assert not trader.errors, trader.errors
    finally:
        trader.close()
