// Screenshots of the Dagster UI for the README: node docs/screenshots.cjs <ui base url> <output folder> <blocked day>
// Needs playwright-core (npm) and Debian's chromium; scripts/screenshots.sh provides both and the UI.
const { chromium } = require('playwright-core');

const [base, out, blocked] = process.argv.slice(2);
const pages = [
  ['/asset-groups/shop', 'asset-graph.png'],
  [`/assets/warehouse/shop/events?view=partitions&partition=${blocked}`, 'partitions.png'],
  [`/assets/raw/ecom_events_raw?view=partitions&partition=${blocked}`, 'raw-partition.png'],
  ['/assets/raw/ecom_events_raw?view=checks&checkDetail=reject_rate', 'checks.png', 'Partitions'],
  ['/assets/raw/ecom_events_raw?view=checks&checkDetail=reject_rate', 'check-history.png', 'Execution history'],
  ['/assets/warehouse/shop/events?view=overview', 'warehouse-asset.png'],
  ['/automation', 'automation.png'],
];

(async () => {
  // Without the background-networking flags Chromium keeps dialling Google's hosts on a closed network.
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
  for (const [path, file, tab] of pages) {
    await page.goto(base + path, { waitUntil: 'networkidle' });
    await page.waitForTimeout(2500);
    const dismiss = page.getByRole('button', { name: /skip|dismiss|got it/i });
    if (await dismiss.count()) {
      await dismiss.first().click();
      await page.waitForTimeout(800);
    }
    if (tab) {
      // The check's sub-tabs are page state, not part of the URL.
      await page.getByText(tab, { exact: true }).last().click();
      await page.waitForTimeout(2000);
    }
    if (file === 'asset-graph.png') {
      // The graph opens at 100 %; zoom out so the whole group fits.
      await page.mouse.move(1250, 880);
      for (let i = 0; i < 1; i++) {
        await page.keyboard.down('Control');
        await page.mouse.wheel(0, 60);
        await page.keyboard.up('Control');
        await page.waitForTimeout(300);
      }
      await page.mouse.move(1490, 130);
      await page.waitForTimeout(500);
    }
    await page.screenshot({ path: `${out}/${file}` });
    console.log(`${out}/${file}`);
  }
  await browser.close();
})();
