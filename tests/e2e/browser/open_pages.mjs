// Opens pages of the Prefect UI in Debian's headless chromium. For each page: waits until a
// given text is shown, saves a screenshot, and collects the visible text.
//
// usage: node open_pages.mjs PAGES_JSON
//   PAGES_JSON: [{"url": "...", "screenshot": "/path.png", "waitFor": "text"}, ...]
// prints: [{"url", "title", "text", "found"}, ...] as JSON on stdout; exits 1 if any text was
//         never shown (the screenshot is still saved, to see why).
// env:    CHROMIUM_PATH (default /usr/bin/chromium), PAGE_TIMEOUT_MS (default 90000)
import { chromium } from "playwright-core";

const pages = JSON.parse(process.argv[2] ?? "[]");
if (!Array.isArray(pages) || pages.length === 0) {
  console.error('usage: node open_pages.mjs \'[{"url": ..., "screenshot": ..., "waitFor": ...}]\'');
  process.exit(2);
}
const timeout = Number(process.env.PAGE_TIMEOUT_MS ?? 90000);

// Playwright gives each launch a fresh throwaway profile. The flags stop background traffic:
// only loopback is reachable, and chromium would otherwise keep trying other hosts.
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const results = [];
try {
  // Tall enough that a whole run form fits in one screenshot (the form scrolls inside the page).
  const context = await browser.newContext({ viewport: { width: 1400, height: 3000 } });
  for (const spec of pages) {
    const page = await context.newPage();
    let found = true;
    await page.goto(spec.url, { waitUntil: "domcontentloaded", timeout });
    try {
      await page.getByText(spec.waitFor, { exact: false }).first().waitFor({ timeout });
      // The first field is there; give the rest of the form a moment to render.
      await page.waitForLoadState("networkidle", { timeout: 15000 }).catch(() => {});
    } catch (error) {
      console.error(`${spec.url}: "${spec.waitFor}" was never shown: ${error.message}`);
      found = false;
    }
    await page.screenshot({ path: spec.screenshot, fullPage: true });
    const text = await page.evaluate(() => document.body.innerText);
    results.push({ url: page.url(), title: await page.title(), text, found });
    await page.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(results));
process.exit(results.every((r) => r.found) ? 0 : 1);
