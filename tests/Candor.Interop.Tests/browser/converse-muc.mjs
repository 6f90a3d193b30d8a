// A chat room in the web client that a Candor server serves at /, in Debian's Chromium driven by playwright-core.
// Run by BrowserTests.cs:
//
//   node converse-muc.mjs CONFIG.json
//
// CONFIG: { "url", "alice": {"jid", "password"}, "bob": {"jid", "password"}, "room", "club",
//           "peer": [argv of scripts/muc_peer.py, which creates room and the members-only club],
//           "peerSays", "aliceSays", "screenshots", "chromium" }
//
// Steps: the slixmpp peer creates both rooms; alice opens the room in Converse, sees the peer's message and
// answers, which the peer must receive; bob, in a second browser context, tries the members-only club and
// Converse shows the server's <registration-required/> refusal. Prints "STEP ..." lines, then "PASS" or "FAIL: why".
import { launchChromium } from './chromium.mjs';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const TIMEOUT = 30_000;
let browser;
const pages = {};

const step = (text) => console.log(`[${new Date().toISOString().slice(11, 19)}] STEP ${text}`);

async function openPage(who) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-GB' });
    const page = await context.newPage();
    page.on('pageerror', (e) => console.log(`  ${who} page error: ${e.message}`));
    page.setDefaultTimeout(TIMEOUT);
    pages[who] = page;
    return page;
}

async function login(page, who, jid, password) {
    step(`${who} logs in as ${jid}`);
    await page.goto(config.url);
    await page.locator('converse-login-form input[name="jid"]').fill(jid);
    await page.locator('converse-login-form input[name="password"]').fill(password);
    await page.locator('converse-login-form button[type="submit"]').click();
    await page.locator('converse-user-profile').waitFor();
}

/** Opens a room as a person does: Groupchats menu, "Add groupchat", the room's address and a nick. */
async function openRoom(page, who, room, nick) {
    step(`${who} opens ${room}`);
    await page.locator('converse-rooms-list converse-dropdown button.dropdown-toggle').first().click();
    await page.locator('a.show-add-muc-modal').click();
    const modal = page.locator('converse-add-muc-modal');
    await modal.locator('input[name="chatroom"]').fill(room);
    await modal.locator('input[name="nickname"]').fill(nick);
    await modal.locator('input[type="submit"][name="join"]').click();
    const muc = page.locator(`converse-muc[jid="${room}"]`);
    await muc.waitFor({ state: 'attached' });
    return muc;
}

function startPeer() {
    const child = spawn(config.peer[0], config.peer.slice(1));
    let output = '';
    const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
    const ready = new Promise((resolve, reject) => {
        const onData = (d) => {
            output += d;
            if (output.includes('READY')) resolve();
        };
        child.stdout.on('data', onData);
        child.stderr.on('data', onData);
        exited.then((code) => reject(new Error(`peer exited with ${code} before READY:\n${output}`)));
    });
    return { ready, exited, output: () => output };
}

async function screenshot(who, name) {
    fs.mkdirSync(config.screenshots, { recursive: true });
    const file = path.join(config.screenshots, `${name}.png`);
    await pages[who].screenshot({ path: file });
    console.log(`SCREENSHOT ${file}`);
}

async function main() {
    let peer;
    try {
        browser = await launchChromium(config.chromium);
        step('the slixmpp peer creates the rooms');
        peer = startPeer();
        await peer.ready;

        const a = await openPage('alice');
        const b = await openPage('bob');
        await login(a, 'alice', config.alice.jid, config.alice.password);
        const room = await openRoom(a, 'alice', config.room, 'alice');

        step(`alice sees the peer's message: ${config.peerSays}`);
        await room.locator('.chat-msg__text', { hasText: config.peerSays }).waitFor();
        step(`alice answers: ${config.aliceSays}`);
        const box = room.locator('textarea.chat-textarea');
        await box.fill(config.aliceSays);
        await box.press('Enter');
        await room.locator('.chat-msg__text', { hasText: config.aliceSays }).waitFor();
        step('the peer receives it');
        const code = await Promise.race([peer.exited, new Promise((r) => setTimeout(() => r('timeout'), TIMEOUT))]);
        if (code !== 0) throw new Error(`peer ended with ${code}:\n${peer.output()}`);
        console.log(peer.output());
        await screenshot('alice', 'alice-in-room');

        await login(b, 'bob', config.bob.jid, config.bob.password);
        const club = await openRoom(b, 'bob', config.club, 'bob');
        step('bob is refused from the members-only room');
        await club.getByText('You are not on the member list of this groupchat.').waitFor();
        await screenshot('bob', 'bob-refused-from-club');
        console.log('PASS');
    } catch (e) {
        for (const who of Object.keys(pages)) {
            try {
                await screenshot(who, `muc-failure-${who}`);
            } catch { /* the page may be gone */ }
        }
        console.log(`FAIL: ${e.stack ?? e}`);
        if (peer) console.log(`peer output:\n${peer.output()}`);
        process.exitCode = 1;
    } finally {
        await browser?.close();
    }
}

await main();
