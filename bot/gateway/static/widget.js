/*
 * Deskmate chat widget: one <script> tag on any site, no framework, no build step.
 *
 *   <script src="https://HOST/widget/widget.js" data-deskmate-url="https://HOST"
 *           data-user-token="<JWT>" defer></script>
 *
 * Transport: socket.io speaking Rasa's socketio channel events
 * (session_request / session_confirm, user_uttered / bot_uttered), plus the
 * gateway's deskmate_history (the whole conversation after a reload) and
 * deskmate_rating. Everything that comes from the network is put into the
 * page with textContent (links are <a> elements built by hand), never as HTML.
 */
(function () {
  'use strict';
  if (window.Deskmate) return; // embedded twice: the first copy wins, no second bubble

  // Non-ASCII text is written as \u escapes: a host page without a charset would
  // otherwise read this file as windows-1252.
  const SESSION_KEY = 'deskmate.session';
  const IDENTITY_KEY = 'deskmate.identity';
  const UNSENT_KEY = 'deskmate.unsent'; // typed, not yet received: kept across a reload
  const TYPING_TIMEOUT_MS = 15000;
  const SEEN_INTERVAL_MS = 500;
  const MAX_CHARS = 1000; // the gateway answers longer messages with a request to shorten
  // Payload types the chat shows as a centred system line rather than a bubble.
  const SYSTEM_TYPES = ['agent_joined', 'resolved', 'notice', 'contact_saved', 'due_soon'];
  // An e-mail's link opens the chat on its conversation: #deskmate=<conversation>.<expiry>.<signature>;
  // the gateway checks the signature before the conversation is shown.
  const RESUME_HASH = /(?:^#|&)deskmate=(([0-9a-f]{32})\.[0-9]{1,12}\.[a-z2-7]{26})(?:&|$)/;

  // Where the gateway is: data-deskmate-url, else the origin this script came from.
  // A path in the base (a gateway behind a reverse-proxy prefix) applies to the
  // assets and the socket.io path, never to the socket.io namespace.
  const script = document.currentScript || document.querySelector('script[src*="widget.js"]');
  const scriptUrl = new URL(script ? script.src : location.href, location.href);
  const base = new URL((script && script.getAttribute('data-deskmate-url')) || scriptUrl.origin, location.href);
  const prefix = base.pathname.replace(/\/+$/, '');
  const asset = (path) => base.origin + prefix + path;

  // localStorage can throw (privacy modes, blocked storage): the chat then just forgets on reload.
  const store = {
    get(key) {
      try { return window.localStorage.getItem(key); } catch (e) { return null; }
    },
    set(key, value) {
      try {
        if (value === null) window.localStorage.removeItem(key);
        else window.localStorage.setItem(key, value);
      } catch (e) { /* not persisted */ }
    },
  };

  // Which visitor a token names, only to notice when the visitor changed (the
  // gateway verifies tokens; this does not). A hash of `sub`, so no e-mail
  // address is written to localStorage.
  function identityOf(token) {
    if (!token) return '';
    try {
      const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      const sub = JSON.parse(atob(part)).sub;
      if (typeof sub !== 'string') return '?';
      let hash = 0x811c9dc5; // FNV-1a, 32 bits
      for (let i = 0; i < sub.length; i++) hash = Math.imul(hash ^ sub.charCodeAt(i), 0x01000193) >>> 0;
      return 'u' + hash.toString(16);
    } catch (e) {
      return '?';
    }
  }

  // ---- State -------------------------------------------------------------
  let userToken = (script && script.getAttribute('data-user-token')) || null;
  // A stored conversation is resumed only by the same visitor: after a sign-out or
  // a different sign-in on a shared computer, the old conversation is not shown.
  let sessionId = store.get(IDENTITY_KEY) === identityOf(userToken) || (!store.get(IDENTITY_KEY) && !userToken)
    ? store.get(SESSION_KEY) : null;
  let socket = null;
  let ready = false; // connected AND the session confirmed: only then may messages go out
  let everConnected = false;
  const outbox = []; // {event, data, node} waiting for a confirmed session, in order
  let sentSinceConfirm = []; // {message, node}: kept visible if the history was read before they were stored
  // Messages sent but not yet received (deskmate_received): if the connection drops first (its gateway
  // may have stopped), they go out again on the next connection, with the same client_id.
  const unconfirmed = [];
  let ticket = null; // {id, agent} while a ticket is open (the bot is quiet then)
  let resumeToken = null; // an e-mail link's signed token, sent with the next session_request
  let typingTimer = null;
  let lastStars = null; // the newest rating control, filled in when the rating is recorded
  let thankedLocally = false; // the widget already said thanks: skip the server's echo
  const titles = new Map(); // quick-reply payload -> title: history shows clicks as the visitor saw them

  // ---- DOM helpers ---------------------------------------------------------
  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.keys(attrs || {}).forEach((key) => {
      if (key === 'class') node.className = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svgIcon(pathData) {
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    svg.setAttribute('class', 'dm-icon');
    const path = document.createElementNS(ns, 'path');
    path.setAttribute('d', pathData);
    svg.appendChild(path);
    return svg;
  }

  // Plain URLs and bare domains (lumio.example/redeem) in a text. No lookbehind:
  // older Safari cannot parse it, so the character before a match is checked by hand.
  const LINK = /(?:https?:\/\/)?((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[a-z]{2,24}(?::\d{2,5})?(?:[/?#][^\s<>"'`]*)?)(?![\w@-])/g;

  // Appends text to parent, with links as <a> elements whose href is always
  // https:// + the matched host/path, so no other scheme (javascript:) can appear.
  function appendLinkified(parent, text) {
    let last = 0;
    let match;
    LINK.lastIndex = 0;
    while ((match = LINK.exec(text)) !== null) {
      const before = match.index > 0 ? text[match.index - 1] : '';
      if (/[@\w.\-/]/.test(before)) continue; // part of an e-mail address or a longer word
      const target = match[1].replace(/[.,;:!?)\]}]+$/, ''); // sentence punctuation is not part of a link
      const shown = match[0].slice(0, match[0].length - (match[1].length - target.length));
      let href;
      try { href = new URL('https://' + target); } catch (e) { continue; }
      if (href.protocol !== 'https:') continue;
      parent.appendChild(document.createTextNode(text.slice(last, match.index)));
      const a = el('a', { class: 'dm-link', href: href.href, target: '_blank', rel: 'noopener noreferrer' }, shown);
      parent.appendChild(a);
      last = match.index + shown.length;
    }
    parent.appendChild(document.createTextNode(text.slice(last)));
  }

  // ---- The widget's DOM ----------------------------------------------------
  const root = el('div', { id: 'deskmate-widget', class: 'dm-root' });
  root.hidden = true; // until widget.css has loaded: no flash of an unstyled button

  const bubble = el('button', {
    type: 'button', class: 'dm-bubble', 'aria-label': 'Open chat', 'aria-expanded': 'false',
    'aria-controls': 'deskmate-widget-panel', 'data-testid': 'dm-bubble',
  });
  bubble.appendChild(svgIcon('M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z'));
  const badge = el('span', { class: 'dm-badge', 'data-testid': 'dm-unread', 'aria-hidden': 'true' });
  badge.hidden = true;
  bubble.appendChild(badge);

  const panel = el('div', { id: 'deskmate-widget-panel', class: 'dm-panel', role: 'dialog', 'aria-label': 'Support chat' });
  panel.hidden = true;
  const header = el('div', { class: 'dm-header' });
  header.appendChild(el('h2', { class: 'dm-title' }, 'Support'));
  const closeButton = el('button', { type: 'button', class: 'dm-close', 'aria-label': 'Close chat' });
  closeButton.appendChild(svgIcon('M6 6l12 12M18 6L6 18'));
  header.appendChild(closeButton);

  const banner = el('div', { class: 'dm-banner', role: 'status', 'data-testid': 'dm-banner' });
  banner.hidden = true;
  const connection = el('div', { class: 'dm-connection', role: 'status' });
  const intro = el('div', { class: 'dm-intro' },
    'Ask a question and the assistant will answer. You can ask to talk to a person at any time.');
  const log = el('div', { class: 'dm-log', role: 'log', 'aria-live': 'polite', 'aria-label': 'Messages', tabindex: '0' });
  const typing = el('div', { class: 'dm-typing', 'data-testid': 'dm-typing' });
  typing.hidden = true;
  for (let i = 0; i < 3; i++) typing.appendChild(el('span', { class: 'dm-dot', 'aria-hidden': 'true' }));
  typing.appendChild(el('span', { class: 'dm-sr-only' }, 'The assistant is typing'));

  const form = el('form', { class: 'dm-composer' });
  const input = el('input', {
    type: 'text', class: 'dm-input', 'data-testid': 'dm-input', 'aria-label': 'Your message',
    placeholder: 'Type your message\u2026', maxlength: String(MAX_CHARS), autocomplete: 'off',
  });
  const sendButton = el('button', { type: 'submit', class: 'dm-send', 'data-testid': 'dm-send' }, 'Send');
  form.appendChild(input);
  form.appendChild(sendButton);

  [header, banner, connection, intro, log, typing, form].forEach((node) => panel.appendChild(node));
  root.appendChild(bubble);
  root.appendChild(panel);

  function scrollDown() {
    log.scrollTop = log.scrollHeight;
  }

  function setConnection(text) {
    connection.textContent = text || '';
    connection.hidden = !text;
  }

  // ---- Messages --------------------------------------------------------------
  // One message: the element with data-testid="dm-message" holds the author or
  // article title, the text bubble, and its buttons, so tests and CSS find them together.
  function addMessage(from, text, opts) {
    const options = opts || {};
    const node = el('div', { class: 'dm-msg dm-msg--' + from, 'data-testid': 'dm-message', 'data-from': from });
    if (options.author) node.appendChild(el('div', { class: 'dm-msg-author' }, options.author));
    if (options.title) node.appendChild(el('div', { class: 'dm-msg-title' }, options.title));
    if (text) {
      const body = el('div', { class: 'dm-msg-body' });
      appendLinkified(body, text);
      node.appendChild(body);
    }
    log.appendChild(node);
    intro.hidden = true;
    scrollDown();
    return node;
  }

  function clearLog() {
    log.textContent = '';
    intro.hidden = false;
    lastStars = null;
  }

  // Once the visitor says something new, older buttons are out of context.
  function retireQuickReplies() {
    log.querySelectorAll('.dm-quick-reply').forEach((button) => { button.disabled = true; });
  }

  function addQuickReplies(node, replies) {
    const group = el('div', { class: 'dm-quick-replies', role: 'group', 'aria-label': 'Suggested replies' });
    replies.forEach((reply) => {
      if (!reply || typeof reply.title !== 'string') return;
      const payload = typeof reply.payload === 'string' && reply.payload ? reply.payload : reply.title;
      titles.set(payload, reply.title);
      const button = el('button', { type: 'button', class: 'dm-quick-reply', 'data-testid': 'dm-quick-reply' }, reply.title);
      button.addEventListener('click', () => {
        button.classList.add('dm-quick-reply--chosen');
        button.setAttribute('aria-pressed', 'true');
        sendMessage(payload, reply.title); // retires this message's other buttons too
      });
      group.appendChild(button);
    });
    if (group.childNodes.length) node.appendChild(group);
  }

  function lockStars(group, stars) {
    if (!group) return;
    group.querySelectorAll('.dm-star').forEach((button) => {
      const n = Number(button.getAttribute('data-stars'));
      button.disabled = true;
      button.classList.toggle('dm-star--on', n <= stars);
      if (n === stars) button.setAttribute('aria-pressed', 'true');
    });
  }

  function addStars(node, ticketId) {
    const group = el('div', { class: 'dm-stars', role: 'group', 'aria-label': 'Rate the help you got', 'data-ticket': String(ticketId) });
    const thanks = el('div', { class: 'dm-stars-thanks', role: 'status' });
    for (let n = 1; n <= 5; n++) {
      const button = el('button', {
        type: 'button', class: 'dm-star', 'data-testid': 'dm-star', 'data-stars': String(n),
        'aria-label': n === 1 ? '1 star' : n + ' stars',
      }, '\u2605');
      button.addEventListener('click', () => {
        lockStars(group, n);
        thanks.textContent = 'Thanks for your rating';
        thankedLocally = true;
        enqueue('deskmate_rating', { ticket: ticketId, stars: n });
      });
      group.appendChild(button);
    }
    node.appendChild(group);
    node.appendChild(thanks);
    lastStars = group;
  }

  function updateBanner() {
    if (!ticket) {
      banner.hidden = true;
      banner.textContent = '';
      return;
    }
    // The promise comes from the facts at handoff (the support policy, who was signed in, the queue),
    // through the handoff payload; a due-time notice replaces it (nobody has replied in time).
    let promise = '';
    if (ticket.dueSoon) {
      promise = ticket.onCall ? ' \u00b7 taking longer than promised: the on-call team is alerted' : ' \u00b7 taking longer than promised';
    } else if (ticket.promise === 'no_agent') {
      promise = ' \u00b7 no agent online right now';
    } else if (ticket.promise === 'priority_busy' || ticket.promise === 'business_no_agent') {
      promise = ' \u00b7 the team will reply here';
    } else if (ticket.replyTime) {
      promise = (ticket.staffedNow ? ' \u00b7 an agent usually replies within ' : ' \u00b7 our team replies within ') + ticket.replyTime;
    }
    if (ticket.ahead > 0 && !ticket.dueSoon) promise += ' \u00b7 ' + ticket.ahead + ' ahead of you';
    banner.textContent = ticket.agent
      ? ticket.agent + ' joined the conversation'
      : "You're in the queue \u00b7 ticket #" + ticket.id + promise;
    banner.hidden = false;
  }

  // What a message's deskmate payload changes besides the message itself (the banner).
  function applyPayload(dm) {
    if (dm.type === 'handoff') {
      if (!ticket || ticket.id !== dm.ticket) {
        ticket = {
          id: dm.ticket, agent: null,
          replyTime: typeof dm.reply_time === 'string' ? dm.reply_time : '',
          staffedNow: dm.agents_working === true,
          promise: typeof dm.promise === 'string' ? dm.promise : '',
          ahead: typeof dm.queue_ahead === 'number' ? dm.queue_ahead : 0,
        };
      }
      hideTyping();
    } else if (dm.type === 'due_soon') {
      if (ticket && !ticket.agent && ticket.id === dm.ticket) {
        ticket.dueSoon = true;
        ticket.onCall = dm.on_call === true;
      }
    } else if (dm.type === 'agent_joined' || dm.type === 'agent_message') {
      const id = dm.ticket !== undefined ? dm.ticket : ticket && ticket.id;
      if (dm.type === 'agent_joined' && id !== undefined && id !== null) retireStars(id); // reopened
      ticket = { id, agent: typeof dm.agent_name === 'string' && dm.agent_name ? dm.agent_name : 'An agent' };
    } else if (dm.type === 'resolved') {
      ticket = null;
    }
    updateBanner();
  }

  // A bot_uttered message, or a non-visitor message of the history.
  function showMessage(msg, live) {
    if (!msg || typeof msg !== 'object') return;
    const meta = msg.metadata && typeof msg.metadata === 'object' ? msg.metadata : {};
    const dm = meta.deskmate && typeof meta.deskmate === 'object' ? meta.deskmate : {};
    applyPayload(dm);
    if (dm.type === 'rating_recorded') {
      lockStars(lastStars, dm.stars);
      if (live && thankedLocally) { thankedLocally = false; return; } // already thanked in the star control
    }
    let from = msg.from === 'agent' || msg.from === 'system' ? msg.from : 'bot';
    if (SYSTEM_TYPES.indexOf(dm.type) !== -1) from = 'system';
    if (dm.type === 'agent_message') from = 'agent';
    const text = typeof msg.text === 'string' ? msg.text : '';
    const replies = Array.isArray(msg.quick_replies) ? msg.quick_replies : [];
    const attachment = attachmentUrl(msg.attachment);
    if (!text && !replies.length && !attachment && dm.type !== 'rating_request') return;
    // The same notice again (a refusal repeated: "too fast", "still connecting") is shown once, at the
    // newest place, instead of stacking up.
    if (dm.type === 'notice' && text) dropNotice(text);
    const node = addMessage(from, text, {
      author: from === 'agent' ? dm.agent_name || 'Support agent' : null,
      title: dm.type === 'article' && typeof dm.title === 'string' ? dm.title : null,
    });
    if (attachment) {
      const a = el('a', { class: 'dm-link', href: attachment, target: '_blank', rel: 'noopener noreferrer' }, 'Open attachment');
      node.appendChild(a);
    }
    if (replies.length) addQuickReplies(node, replies);
    if (dm.type === 'notice') node.setAttribute('data-notice', 'true');
    if (dm.type === 'rating_request') addStars(node, dm.ticket);
    if (dm.type === 'handoff' && dm.email_on_file === false && ticket) addContactForm(node);
    if (dm.type === 'contact_saved' || dm.type === 'resolved') dropContactForms();
    scrollDown();
  }

  // The same notice: the same words, whatever its numbers ("wait 58 s" and "wait 57 s" are one).
  function noticeKey(text) {
    return String(text).replace(/\d+/g, '#');
  }

  function dropNotice(text) {
    const key = noticeKey(text);
    log.querySelectorAll('[data-notice]').forEach((node) => {
      const body = node.querySelector('.dm-msg-body');
      if (body && noticeKey(body.textContent) === key) node.remove();
    });
  }

  // A resolved ticket opened again: its rating request no longer applies (the stars, and a rating given,
  // go); when it is resolved again, a new request comes with fresh stars.
  function retireStars(ticketId) {
    log.querySelectorAll('.dm-stars').forEach((group) => {
      if (group.getAttribute('data-ticket') !== String(ticketId)) return;
      const thanks = group.nextElementSibling;
      if (thanks && thanks.classList.contains('dm-stars-thanks')) thanks.remove();
      group.replaceWith(el('div', { class: 'dm-stars-reopened', 'data-testid': 'dm-stars-reopened' },
        'This request was reopened: you can rate it once it is resolved again.'));
      if (lastStars === group) lastStars = null;
    });
  }

  // ---- E-mail for replies --------------------------------------------------------
  // A visitor the website did not sign in may leave an address: the team's replies
  // that they miss in the chat are e-mailed (optional; the gateway checks it).
  function dropContactForms() {
    log.querySelectorAll('.dm-contact').forEach((node) => node.remove());
  }

  function addContactForm(node) {
    dropContactForms();
    const box = el('form', { class: 'dm-contact', 'data-testid': 'dm-contact', novalidate: '' });
    const label = el('label', { class: 'dm-contact-label' }, 'Not staying? Get the reply by e-mail too (optional):');
    const field = el('input', {
      type: 'email', class: 'dm-contact-email', 'data-testid': 'dm-contact-email', autocomplete: 'email',
      maxlength: '254', placeholder: 'name@example.com', 'aria-label': 'Your e-mail address',
    });
    const save = el('button', { type: 'submit', class: 'dm-contact-save', 'data-testid': 'dm-contact-save' }, 'Save');
    const problem = el('div', { class: 'dm-contact-error', 'data-testid': 'dm-contact-error', role: 'alert' });
    label.appendChild(field);
    box.appendChild(label);
    box.appendChild(save);
    box.appendChild(problem);
    box.addEventListener('submit', (event) => {
      event.preventDefault();
      const email = field.value.trim();
      problem.textContent = '';
      if (!email) { problem.textContent = 'Please type your e-mail address.'; return; }
      if (!ready || !socket) { problem.textContent = 'Still connecting: please try again in a moment.'; return; }
      save.disabled = true;
      save.textContent = 'Saving\u2026';
      socket.timeout(10000).emit('deskmate_contact', { session_id: sessionId, email }, (err, answer) => {
        save.disabled = false;
        save.textContent = 'Save';
        if (err) { problem.textContent = 'No answer from the chat: please try again.'; return; }
        if (answer && answer.ok) {
          // The stored confirmation leaves the address out; this visitor sees which one was kept.
          const kept = el('div', { class: 'dm-contact-kept', 'data-testid': 'dm-contact-kept' },
            'Replies will also go to ' + (typeof answer.email === 'string' ? answer.email : email) + '.');
          if (box.isConnected) box.replaceWith(kept);
          else node.appendChild(kept); // the confirmation message came first and took the form away
          return;
        }
        problem.textContent = answer && typeof answer.error === 'string' ? answer.error : 'That did not work: please try again.';
      });
    });
    node.appendChild(box);
  }

  // Rasa's attachment ({type, payload: {src}}): linked only when it is http(s).
  function attachmentUrl(attachment) {
    const src = attachment && attachment.payload && attachment.payload.src;
    if (typeof src !== 'string') return null;
    try {
      const url = new URL(src);
      return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function renderHistory(messages) {
    if (!Array.isArray(messages)) return;
    log.setAttribute('aria-busy', 'true'); // screen readers: don't read the whole replay aloud
    clearLog();
    ticket = null;
    messages.forEach((msg) => {
      if (msg && msg.from === 'visitor') {
        const text = typeof msg.text === 'string' ? msg.text : '';
        retireQuickReplies();
        addMessage('visitor', titles.get(text) || text);
      } else {
        showMessage(msg, false);
      }
    });
    // Messages sent just after the session was confirmed may be stored after the
    // history was read: keep their bubbles rather than lose them from view.
    const tail = messages.filter((m) => m && m.from === 'visitor').slice(-sentSinceConfirm.length).map((m) => m.text);
    sentSinceConfirm.forEach((sent) => {
      if (tail.indexOf(sent.message) === -1) log.appendChild(sent.node);
    });
    updateBanner();
    if (ticket) hideTyping();
    log.removeAttribute('aria-busy');
    scrollDown();
  }

  // ---- Typing indicator ----------------------------------------------------
  function showTyping() {
    if (ticket) return; // with the team, the bot is quiet: nobody is "typing" for it
    typing.hidden = false;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(hideTyping, TYPING_TIMEOUT_MS);
    scrollDown();
  }

  function hideTyping() {
    clearTimeout(typingTimer);
    typing.hidden = true;
  }

  // ---- Sending ---------------------------------------------------------------
  // Everything goes through the outbox, so messages typed while disconnected
  // (or before the session is confirmed) leave in order once it is.
  function enqueue(event, data, node, shown) {
    if (event === 'user_uttered') data = Object.assign({ client_id: newClientId() }, data);
    outbox.push({ event, data, node, shown });
    if (node) node.classList.add('dm-msg--pending');
    flush();
    saveUnsent();
  }

  // What the visitor typed that the gateway has not said it received, for this conversation and
  // visitor: a reload (or a closed tab) while the connection is down does not lose it.
  function saveUnsent() {
    const messages = unconfirmed.concat(outbox).filter((item) => item.event === 'user_uttered')
      .map((item) => ({ message: item.data.message, client_id: item.data.client_id, shown: item.shown }));
    store.set(UNSENT_KEY, messages.length
      ? JSON.stringify({ session: sessionId, identity: identityOf(userToken), messages }) : null);
  }

  function restoreUnsent() {
    let kept = null;
    try { kept = JSON.parse(store.get(UNSENT_KEY) || 'null'); } catch (e) { kept = null; }
    if (!kept || kept.session !== sessionId || kept.identity !== identityOf(userToken) || !Array.isArray(kept.messages)) {
      store.set(UNSENT_KEY, null);
      return;
    }
    kept.messages.forEach((m) => {
      if (!m || typeof m.message !== 'string' || typeof m.client_id !== 'string') return;
      const shown = typeof m.shown === 'string' ? m.shown : m.message;
      const node = addMessage('visitor', shown);
      node.classList.add('dm-msg--pending');
      outbox.push({ event: 'user_uttered', data: { message: m.message, client_id: m.client_id }, node, shown });
    });
  }

  function flush() {
    while (ready && socket && outbox.length) {
      const item = outbox.shift();
      const payload = Object.assign({ session_id: sessionId }, item.data);
      if (item.event === 'user_uttered') {
        payload.metadata = userToken ? { user_token: userToken } : {};
        sentSinceConfirm.push({ message: item.data.message, node: item.node });
        showTyping();
      }
      socket.emit(item.event, payload);
      if (item.event === 'user_uttered') unconfirmed.push(item);
      if (item.node) item.node.classList.remove('dm-msg--pending');
    }
  }

  // 128 random bits in hex: the gateway stores a message sent twice with the same id once.
  function newClientId() {
    const bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  // `message` goes to the bot; `shown` is the visitor's bubble (a quick reply's title).
  function sendMessage(message, shown) {
    retireQuickReplies();
    const node = addMessage('visitor', shown);
    enqueue('user_uttered', { message }, node, shown);
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = '';
    sendMessage(text, text);
  });

  // ---- Welcome ---------------------------------------------------------------
  function showWelcome(data) {
    if (!data || typeof data.greeting !== 'string' || !data.greeting) return;
    intro.textContent = '';
    intro.appendChild(document.createTextNode(data.greeting));
    const starters = Array.isArray(data.starters) ? data.starters.filter((s) => typeof s === 'string' && s) : [];
    if (!starters.length) return;
    const group = el('div', { class: 'dm-quick-replies dm-starters', role: 'group', 'aria-label': 'Popular questions' });
    starters.forEach((question) => {
      const button = el('button', { type: 'button', class: 'dm-quick-reply', 'data-testid': 'dm-starter' }, question);
      button.addEventListener('click', () => sendMessage(question, question));
      group.appendChild(button);
    });
    intro.appendChild(group);
  }

  // ---- Unread ----------------------------------------------------------------
  // Messages that came while the chat was closed or the page hidden: a count on
  // the button and in the page title. The gateway keeps how far the visitor has
  // read (deskmate_seen), so the count survives a reload or a visit days later.
  let unreadCount = 0;
  let teamReplied = false;
  let pageTitle = null; // the host page's title, before "(N) " was put in front
  let titleSet = null; // the title as this widget last set it (the page may change it meanwhile)
  let seenTimer = null;

  function setUnread(count) {
    unreadCount = Math.max(0, count);
    badge.textContent = unreadCount > 99 ? '99+' : String(unreadCount);
    badge.hidden = unreadCount === 0;
    bubble.setAttribute('aria-label', unreadCount ? 'Open chat, ' + unreadCount + ' unread' : 'Open chat');
    // The page may retitle itself meanwhile (a checkout's steps): its newest title is the one to keep.
    if (pageTitle === null || document.title !== titleSet) pageTitle = document.title;
    titleSet = unreadCount ? '(' + badge.textContent + ') ' + pageTitle : pageTitle;
    if (document.title !== titleSet) document.title = titleSet;
    if (!unreadCount) { pageTitle = null; titleSet = null; }
  }

  function seeing() {
    return !panel.hidden && document.visibilityState !== 'hidden';
  }

  // The visitor sees the chat: tell the gateway everything so far is read.
  function markSeen() {
    if (!seeing()) return;
    if (unreadCount && teamReplied) addMessage('system', 'The team replied while you were away.');
    teamReplied = false;
    setUnread(0);
    if (ready && socket) socket.emit('deskmate_seen', { session_id: sessionId });
  }

  // A burst of replies sends one deskmate_seen at once and one when it is over, not one each.
  let lastSeenSent = 0;
  function markSeenSoon() {
    if (seenTimer) return;
    const wait = lastSeenSent + SEEN_INTERVAL_MS - Date.now();
    if (wait <= 0) {
      lastSeenSent = Date.now();
      markSeen();
      return;
    }
    seenTimer = setTimeout(() => { seenTimer = null; lastSeenSent = Date.now(); markSeen(); }, wait);
  }

  document.addEventListener('visibilitychange', markSeen);
  // Leaving with a burst's last deskmate_seen still waiting: send it now.
  window.addEventListener('pagehide', () => { if (seenTimer) { clearTimeout(seenTimer); seenTimer = null; markSeen(); } });

  // ---- Open / close ----------------------------------------------------------
  let mounted = false;
  let openWhenMounted = false;

  function open() {
    if (!mounted) { openWhenMounted = true; return; }
    if (!panel.hidden) return;
    panel.hidden = false;
    bubble.hidden = true;
    bubble.setAttribute('aria-expanded', 'true');
    markSeen();
    scrollDown();
    input.focus();
  }

  function close() {
    openWhenMounted = false;
    if (panel.hidden) return;
    panel.hidden = true;
    bubble.hidden = false;
    bubble.setAttribute('aria-expanded', 'false');
    bubble.focus();
  }

  bubble.addEventListener('click', open);
  closeButton.addEventListener('click', close);
  panel.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' || event.key === 'Esc') {
      event.stopPropagation();
      close();
    }
  });

  // ---- Connection ------------------------------------------------------------
  function connect(io) {
    socket = io(base.origin, { path: prefix + '/socket.io' });

    // Leaving the page closes the socket at once, so the team sees the visitor go now (not after the
    // server's ping time-out); a page restored from the back/forward cache connects again.
    window.addEventListener('pagehide', () => { if (socket) socket.disconnect(); });
    window.addEventListener('pageshow', (event) => { if (event.persisted && socket && !socket.connected) socket.connect(); });

    // On every (re)connect: ask for the stored conversation again. A signed-in customer's conversation
    // is shown only to that customer (or to a link e-mailed to them), so the request says who this is.
    function sessionRequest() {
      const request = { session_id: sessionId };
      if (resumeToken) request.resume = resumeToken;
      if (userToken) request.metadata = { user_token: userToken };
      return request;
    }

    socket.on('connect', () => {
      ready = false;
      // What the last connection sent but never heard was received goes first, in order.
      unconfirmed.forEach((item) => { if (item.node) item.node.classList.add('dm-msg--pending'); });
      outbox.unshift(...unconfirmed.splice(0));
      socket.emit('session_request', sessionRequest());
    });

    socket.on('session_confirm', (data) => {
      const confirmed = typeof data === 'string' ? data : data && data.session_id;
      if (typeof confirmed !== 'string') return;
      if (sessionId && confirmed !== sessionId) {
        // The gateway did not know our conversation: start afresh, keeping unsent messages.
        clearLog();
        ticket = null;
        updateBanner();
        outbox.forEach((item) => { if (item.node) log.appendChild(item.node); });
      }
      sessionId = confirmed;
      resumeToken = null;
      store.set(SESSION_KEY, sessionId);
      store.set(IDENTITY_KEY, identityOf(userToken));
      ready = true;
      everConnected = true;
      sentSinceConfirm = [];
      setConnection(null);
      flush();
      saveUnsent(); // now kept under the confirmed conversation
    });

    // A new conversation: the greeting and starter questions a support lead chose (kb/welcome.yml).
    socket.on('deskmate_welcome', (data) => showWelcome(data));

    socket.on('deskmate_history', (data) => {
      renderHistory(data && data.messages);
      const unread = data && data.unread && typeof data.unread === 'object' ? data.unread : {};
      if (Number.isInteger(unread.count) && unread.count > 0) {
        teamReplied = unread.team_replied === true;
        setUnread(unread.count);
      }
      markSeen();
    });

    // The gateway refused a new conversation for now (too many from this connection): say so, ask again later.
    socket.on('deskmate_notice', (data) => {
      const text = data && typeof data.text === 'string' ? data.text : 'The chat is busy. Please try again shortly.';
      const wait = data && Number.isFinite(data.retry_after) ? Math.max(1, data.retry_after) : 30;
      setConnection(text);
      setTimeout(() => { if (socket.connected && !ready) socket.emit('session_request', sessionRequest()); }, wait * 1000);
    });

    // What the visitor wrote in another tab or on another device, so this one shows the question too.
    socket.on('deskmate_visitor_message', (data) => {
      const text = data && typeof data.text === 'string' ? data.text : '';
      if (!text) return;
      retireQuickReplies();
      addMessage('visitor', titles.get(text) || text);
      showTyping();
    });

    socket.on('deskmate_received', (data) => {
      const id = data && data.client_id;
      const at = unconfirmed.findIndex((item) => item.data.client_id === id);
      if (at !== -1) unconfirmed.splice(at, 1);
      saveUnsent();
    });

    socket.on('bot_uttered', (msg) => {
      hideTyping();
      showMessage(msg, true);
      // "One moment, lots of questions": the answer is still on its way.
      const kind = msg && msg.metadata && msg.metadata.deskmate && msg.metadata.deskmate.type;
      if (kind === 'busy') showTyping();
      if (seeing()) {
        markSeenSoon();
      } else {
        const from = msg && msg.metadata && msg.metadata.deskmate && msg.metadata.deskmate.type;
        if (from === 'agent_message') teamReplied = true;
        setUnread(unreadCount + 1);
      }
    });

    // A message went to a conversation of another identity (e.g. a link opened someone else's):
    // a conversation of our own, and the message sent there; nothing was stored in the other.
    socket.on('deskmate_restart', (data) => {
      const message = data && typeof data.message === 'string' ? data.message : '';
      resetConversation();
      addMessage('system', data && typeof data.text === 'string' ? data.text : 'A new conversation was started.');
      if (message) sendMessage(message, titles.get(message) || message);
    });

    socket.on('disconnect', (reason) => {
      ready = false;
      hideTyping(); // a reply sent while we are away is lost; the history brings it back
      setConnection(everConnected ? 'Reconnecting\u2026' : 'Connecting\u2026');
      // socket.io reconnects by itself, except when the server closed the socket.
      if (reason === 'io server disconnect') socket.connect();
    });

    socket.on('connect_error', () => setConnection(everConnected ? 'Reconnecting\u2026' : 'Connecting\u2026'));
  }

  // Loads socket.io without leaving a global behind: window.io is put back as it was.
  function loadSocketIo() {
    const hadIo = Object.prototype.hasOwnProperty.call(window, 'io');
    const previous = window.io;
    const tag = el('script', { src: asset('/widget/vendor/socket.io.min.js'), async: '' });
    tag.addEventListener('load', () => {
      const io = window.io;
      if (hadIo) window.io = previous;
      else delete window.io;
      tag.remove();
      if (typeof io === 'function') connect(io);
      else setConnection('The chat is unavailable right now. Please try again later.');
    });
    tag.addEventListener('error', () => {
      tag.remove();
      setConnection('The chat is unavailable right now. Please try again later.');
    });
    document.head.appendChild(tag);
  }

  function mount() {
    if (mounted) return;
    mounted = true;
    root.hidden = false;
    if (openWhenMounted) open();
  }

  // Opened from an e-mail's link: that conversation, with its history, in this browser.
  function resumeFromLink() {
    const match = RESUME_HASH.exec(location.hash || '');
    if (!match) return;
    sessionId = match[2];
    resumeToken = match[1]; // stored only once the gateway confirms it (session_confirm)
    try { history.replaceState(null, '', location.pathname + location.search); } catch (e) { /* keeps the hash */ }
    openWhenMounted = true;
  }

  function start() {
    resumeFromLink();
    restoreUnsent();
    const css = el('link', { rel: 'stylesheet', href: asset('/widget/widget.css') });
    css.addEventListener('load', mount);
    css.addEventListener('error', mount);
    setTimeout(mount, 3000); // a stylesheet that never answers must not hide the chat forever
    document.head.appendChild(css);
    document.body.appendChild(root);
    setConnection('Connecting\u2026');
    loadSocketIo();
  }

  // ---- Public API ------------------------------------------------------------
  // A new conversation (new session) as the visitor the token names, or anonymous for null; a new
  // token for the visitor already signed in (a refresh, or a page that signs in on every load) keeps
  // the conversation. Signing in from an anonymous chat carries what the gateway has not received into
  // the new conversation, so it is not lost: what waits to go out, and, when the connection is down,
  // what went out without a receipt (its gateway may have stopped before storing it). Over a live
  // connection a sent message reaches the old conversation (the socket closes after it is written), so
  // it is not carried: that would store it twice. A sign-out or a switch to another visitor carries
  // nothing: on a shared computer it may be someone else's.
  function setUserToken(token) {
    if (token !== null && token !== undefined && typeof token !== 'string') {
      throw new TypeError('Deskmate.setUserToken expects a token string or null');
    }
    const next = token || null;
    const identity = identityOf(next);
    if (identity === identityOf(userToken) && identity !== '?') {
      userToken = next;
      saveUnsent();
      return;
    }
    const pending = socket && socket.connected ? outbox : unconfirmed.concat(outbox);
    const carried = !userToken && next
      ? pending.filter((item) => item.event === 'user_uttered')
        .map((item) => ({ message: item.data.message, shown: item.shown || item.data.message }))
      : [];
    userToken = next;
    resetConversation();
    // New ids: the old conversation may hold some of them, the new one holds none.
    carried.forEach((item) => enqueue('user_uttered', { message: item.message }, addMessage('visitor', item.shown), item.shown));
  }

  // Forget the conversation (and what was waiting to go out): the next session is a new one.
  function resetConversation() {
    sessionId = null;
    resumeToken = null;
    store.set(SESSION_KEY, null);
    store.set(IDENTITY_KEY, identityOf(userToken));
    outbox.length = 0;
    unconfirmed.length = 0;
    store.set(UNSENT_KEY, null);
    sentSinceConfirm = [];
    ticket = null;
    thankedLocally = false;
    teamReplied = false;
    setUnread(0); // the count was the old conversation's
    hideTyping();
    clearLog();
    updateBanner();
    if (socket) {
      // A fresh socket, so it leaves the old conversation's room on the server too.
      ready = false;
      socket.disconnect();
      socket.connect();
    }
  }

  window.Deskmate = Object.freeze({ setUserToken, open, close });

  if (document.body) start();
  else document.addEventListener('DOMContentLoaded', start);
})();
