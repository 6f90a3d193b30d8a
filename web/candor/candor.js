// Starts Converse.js for this Candor server. Everything Converse loads comes from this server: the page's
// Content-Security-Policy allows nothing else, and the settings below turn off what would try.
import converse from '/converse/converse.min.js';

const meta = (name) => document.querySelector(`meta[name="candor-${name}"]`).content;
const domain = meta('domain');

converse.plugins.add('candor', {
    initialize() {
        const { api } = this._converse;
        // The full-screen login page shows a footer with sponsor logos loaded from the Converse project's
        // site, and no setting turns it off. Replace the element with an empty one (elements defined by a
        // plugin before converse.initialize() finishes take the place of Converse's own).
        api.elements.define('converse-footer', class extends HTMLElement {});

        // Converse 14.0.0 accepts a contact request without asking for the contact's presence in return
        // (its accept dialog calls a subscribe() that does something else), so the new contact would stay
        // one-way. Ask back once the request has been accepted (requesting -> false, subscription 'from').
        api.listen.on('rosterInitialized', () => {
            this._converse.state.roster.on('change:requesting', (contact) => {
                if (!contact.get('requesting') && contact.get('subscription') === 'from' && !contact.get('ask'))
                    contact.subscribeToPresence();
            });
        });

        // Converse 14.0.0 waits for the XEP-0191 block list before it opens a chat with someone who is not
        // a contact, and never gets it from a server without blocking support: such messages would hang
        // unseen. Give it an empty block list then (nothing can be blocked without server support).
        api.listen.on('discoInitialized', async () => {
            const { Strophe, Collection } = converse.env;
            const domain = this._converse.session.get('domain');
            if (!(await api.disco.supports(Strophe.NS.BLOCKING, domain)))
                api.trigger('blocklistInitialized', new Collection());
        });
    },
});

converse.initialize({
    whitelisted_plugins: ['candor'],
    view_mode: 'fullscreen',
    authentication: 'login',
    auto_login: false,
    auto_reconnect: true,
    // WebSocket, or BOSH (XEP-0206) for networks whose proxies break WebSockets: open the page as /?transport=bosh.
    ...(new URLSearchParams(location.search).get('transport') === 'bosh'
        ? { bosh_service_url: meta('bosh-url') }
        : { websocket_url: meta('websocket-url') }),
    discover_connection_methods: false,
    default_domain: domain,
    allow_registration: meta('allow-registration') === 'true',
    registration_domain: domain,
    // Local files only.
    assets_path: '/converse',
    sounds_path: '/converse/sounds/',
    notification_icon: '/converse/images/logo/conversejs-filled.svg',
    use_system_emojis: true,
    emoji_image_path: '/converse/images',
    // Nothing fetched from links in messages: no inline remote images, audio or video, no HEAD requests,
    // no embedded YouTube/Spotify players. Links stay links, except to files uploaded to this server (XEP-0363),
    // which show inline.
    render_media: meta('upload-host') ? [meta('upload-host')] : false,
    fetch_url_headers: false,
    embed_3rd_party_media_players: false,
    // The contact and registration forms would fetch lists of public providers from data.xmpp.net.
    autocomplete_providers_url: null,
    xmpp_providers_url: null,
    // The default room search asks a third-party service (search.jabber.network). Converse 14 drops the room
    // field of its "Add groupchat" form when this is empty, so ask this server, which answers the search with an
    // error (Converse then offers no suggestions) and the field stays.
    muc_search_service: domain,
    // What the browser keeps is decided at login by the form's "This is a trusted device" box: on a device
    // not marked trusted nothing outlives the session (and OMEMO stays off, having nowhere to keep its keys);
    // on a trusted one history and OMEMO keys are kept, so end-to-end encryption works (promise 7). Clearing
    // everything on logout regardless would make OMEMO impossible in this client.
    clear_cache_on_logout: false,
    loglevel: 'warn',
});
