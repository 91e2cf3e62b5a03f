// The console in real headless Chromium (Playwright driving the system's chromium).
// env: PLAYWRIGHT_DIR (where playwright-core is installed), BASE_URL, ADMIN, PASSWORD,
// TOTP_SEED (base32), SHOTS (directory for screenshots).
// Logs in with password + TOTP, adds a pin-otp method, a UDP and a TLS client, adds a user and enrols a
// TOTP token with a PIN (reading the otpauth URI from the page), publishes, and screenshots
// every page. Prints {"otpauth_uri": ..., "clients": [[cell, ...], ...]}: the URI for the caller
// to log in over RADIUS with, and the RADIUS Clients table as shown.
import { mkdirSync } from "node:fs";
import { launch, logIn } from "./console_lib.mjs";

const base = process.env.BASE_URL;
const shots = process.env.SHOTS;
mkdirSync(shots, { recursive: true });
const { browser, page } = await launch();
const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
const byId = (id) => page.locator(`[id="${id}"]`);
async function submit(label) {
  await page.locator(`form[aria-label="${label}"] button[type=submit]`).click();
}

// Not logged in: the console sends us to the login page.
await page.goto(base + "/console");
await page.waitForURL("**/console/login");
await shot("login");
await logIn(page, base, process.env.ADMIN, process.env.PASSWORD, process.env.TOTP_SEED);
await shot("dashboard");

await page.goto(base + "/console/methods");
await byId("f-name").fill("vpn");
await byId("f-kind").selectOption("pin-otp");
await byId("f-replies.accept").fill("Welcome {user}");
await byId("f-attrs").fill("Filter-Id = vpn-users");
await submit("Add method");
await page.locator("td", { hasText: "pin-otp" }).waitFor();
await shot("methods");

// A validation message appears next to the form, from the same check as the CLI.
await page.goto(base + "/console/clients");
await byId("f-name").fill("gw");
await byId("f-address").fill("not-an-address");
await byId("f-secret").fill("testing123-console");
await submit("Add client");
await page.locator('form[aria-label="Add client"] [role="alert"].error').waitFor();
const problem = await page.locator('form[aria-label="Add client"] [role="alert"]').textContent();
if (!problem.includes("not-an-address")) throw new Error("unexpected message: " + problem);
await shot("clients-error");

await page.goto(base + "/console/clients");
await byId("f-name").fill("gw");
await byId("f-address").fill("127.0.0.1");
await byId("f-secret").fill("testing123-console");
await byId("f-method").selectOption("vpn");
await submit("Add client");
await page.locator("td", { hasText: "127.0.0.1" }).waitFor();

// A TLS client: its peer name and RADIUS/1.1 fields appear only once TLS is chosen, and its
// shared secret may be left empty (RFC 6614's "radsec").
if (await byId("f-tls_peer_name").isVisible()) throw new Error("TLS fields shown for a UDP client");
await byId("f-name").fill("edge");
await byId("f-address").fill("127.0.1.0/24");
await byId("f-transport").selectOption("tls");
await byId("f-tls_peer_name").waitFor();
await byId("f-tls_peer_name").fill("edge.example.net");
await byId("f-radius_1_1").selectOption("require");
await byId("f-method").selectOption("vpn");
await shot("clients-tls-form");
await submit("Add client");
await page.locator("td", { hasText: "edge.example.net" }).waitFor();
const clients = await page.locator("table tbody tr").evaluateAll((trs) =>
  trs.map((tr) => [...tr.cells].map((td) => td.textContent)));
await shot("clients");

await page.goto(base + "/console/users");
await page.locator('form[aria-label="Add user"] [id="f-name"]').fill("bob");
await submit("Add user");
await page.locator("td", { hasText: "bob" }).first().waitFor();
await page.locator('form[aria-label="Enrol token"] [id="f-user"]').fill("bob");
await page.locator('form[aria-label="Enrol token"] [id="f-kind"]').selectOption("totp");
await page.locator('form[aria-label="Enrol token"] [id="f-pin"]').fill("4321");
await submit("Enrol token");
await byId("otpauth-uri").waitFor();
const uri = await byId("otpauth-uri").textContent();
await shot("users-enrolment");

await page.goto(base + "/console/publish");
await page.locator("#diff").waitFor();
await shot("publish-pending");
await submit("Publish");
await page.locator("#published").waitFor();
await shot("publish-done");

for (const p of ["directories", "couriers", "apiclients", "identities", "audit", "config"]) {
  await page.goto(base + "/console/" + p);
  await shot(p);
}
await browser.close();
console.log(JSON.stringify({ otpauth_uri: uri, clients }));
