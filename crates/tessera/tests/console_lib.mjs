// Shared by the console's browser scripts: Playwright (playwright-core) driving the system's
// chromium, and logging in with password + TOTP.
// env: PLAYWRIGHT_DIR (where playwright-core is installed), CHROMIUM (optional).
import { createRequire } from "node:module";
import { createHmac } from "node:crypto";

const require = createRequire(process.env.PLAYWRIGHT_DIR + "/");
const { chromium } = require("playwright-core");

function base32(s) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0, value = 0;
  const out = [];
  for (const c of s.replace(/=+$/, "")) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) { out.push((value >>> (bits - 8)) & 255); bits -= 8; }
  }
  return Buffer.from(out);
}

export function totp(seed) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000 / 30)));
  const h = createHmac("sha1", base32(seed)).update(counter).digest();
  const o = h[h.length - 1] & 15;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1000000).padStart(6, "0");
}

// A headless browser and one page that accepts the server's self-signed certificate.
export async function launch() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  // The server's certificate is the self-signed one tessera generated for this test.
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  return { browser, page };
}

// Fill the login form (the page must be on it) and wait for the dashboard.
export async function logIn(page, base, name, password, seed) {
  const byId = (id) => page.locator(`[id="${id}"]`);
  await byId("name").fill(name);
  await byId("password").fill(password);
  await byId("otp").fill(totp(seed));
  await page.keyboard.press("Enter"); // usable without a mouse
  await page.waitForURL(base + "/console");
}
