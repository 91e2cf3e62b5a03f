// The console's Remove buttons with hostile names, in real headless Chromium.
// env: PLAYWRIGHT_DIR, BASE_URL, ADMIN, PASSWORD, TOTP_SEED (base32), SHOTS, and PLAN: JSON
// {users: [...], clients: [...], methods: [...], directories: [...], couriers: [...],
//  apiclients: [...], unaddressable_users: [...], refused_user: "..."}.
// Clicks Remove next to each named object (a page per click, as a person would), waits until
// its row is gone, and records any dialog (a failed removal, or a name run as markup). Then
// tries to add `refused_user` through the form. Prints
// {"dialogs": [...], "disabled": [...], "refused": "...", "refused_field": "..."}; the caller
// checks in the database that exactly the named objects went.
import { mkdirSync } from "node:fs";
import { launch, logIn } from "./console_lib.mjs";

const base = process.env.BASE_URL;
const shots = process.env.SHOTS;
const plan = JSON.parse(process.env.PLAN);
mkdirSync(shots, { recursive: true });
const { browser, page } = await launch();
const dialogs = [];
page.on("dialog", (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });

await page.goto(base + "/console/login");
await logIn(page, base, process.env.ADMIN, process.env.PASSWORD, process.env.TOTP_SEED);

const removeButton = (name) => page.getByRole("button", { name: "Remove " + name, exact: true });

for (const collection of ["users", "clients", "methods", "directories", "couriers", "apiclients"]) {
  await page.goto(base + "/console/" + collection);
  await shot(`names-${collection}-before`);
  for (const name of plan[collection]) {
    const b = removeButton(name);
    if (await b.count() !== 1) throw new Error(`no single Remove button for ${collection} ${JSON.stringify(name)}`);
    await b.click();
    // The page reloads after the API answered; a failure shows a dialog and no reload.
    await b.waitFor({ state: "detached", timeout: 10000 }).catch(() => {
      throw new Error(`${collection} ${JSON.stringify(name)} is still listed; dialogs: ${JSON.stringify(dialogs)}`);
    });
  }
  await shot(`names-${collection}-after`);
}

// Names no URL can address keep a disabled button.
const disabled = [];
await page.goto(base + "/console/users");
for (const name of plan.unaddressable_users) {
  if (await removeButton(name).isDisabled()) disabled.push(name);
}

// A new hostile name is refused by the form, with the rule, next to the Name field.
const form = page.locator('form[aria-label="Add user"]');
await form.locator('[id="f-name"]').fill(plan.refused_user);
await form.locator("button[type=submit]").click();
const alert = form.locator('[role="alert"].error');
await alert.waitFor();
const refused = await alert.textContent();
const refusedField = await form.locator('[id="f-name"]').getAttribute("aria-invalid");
await shot("names-users-refused");

await browser.close();
console.log(JSON.stringify({ dialogs, disabled, refused, refused_field: refusedField }));

function shot(name) {
  return page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}
