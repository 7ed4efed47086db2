/*
 * The demo page's "Chat as" switch. In production the website signs its own
 * customers' tokens; here the gateway's demo-only /demo/token does it.
 *
 * This file is loaded (defer) before widget.js, so on a reload it can put the
 * chosen customer's token on the widget's script tag before the widget reads
 * it: the widget then resumes that customer's conversation instead of
 * starting an anonymous one.
 */
(function () {
  'use strict';
  const KEY = 'deskmate-demo.chat-as'; // sessionStorage: {email, token, exp}
  const select = document.getElementById('demo-chat-as');
  const status = document.getElementById('demo-chat-as-status');
  if (!select) return;

  function remembered() {
    try {
      const saved = JSON.parse(window.sessionStorage.getItem(KEY) || 'null');
      return saved && saved.exp * 1000 > Date.now() ? saved : null;
    } catch (e) {
      return null;
    }
  }

  function remember(value) {
    try {
      if (value) window.sessionStorage.setItem(KEY, JSON.stringify(value));
      else window.sessionStorage.removeItem(KEY);
    } catch (e) { /* the choice is just not kept across reloads */ }
  }

  function expiry(token) {
    try {
      return JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).exp || 0;
    } catch (e) {
      return 0;
    }
  }

  const saved = remembered();
  const widgetTag = document.querySelector('script[src$="widget.js"]');
  if (saved && Array.prototype.some.call(select.options, (o) => o.value === saved.email)) {
    select.value = saved.email;
    if (widgetTag) widgetTag.setAttribute('data-user-token', saved.token);
  } else {
    remember(null);
  }

  let chattingAs = select.value; // who the chat is with now: the switch goes back to it when a change fails

  select.addEventListener('change', async () => {
    const email = select.value;
    status.textContent = '';
    if (!window.Deskmate) {
      select.value = chattingAs;
      status.textContent = 'The chat has not loaded yet.';
      return;
    }
    if (!email) {
      remember(null);
      window.Deskmate.setUserToken(null);
      chattingAs = email;
      status.textContent = 'Chatting anonymously.';
      return;
    }
    try {
      const response = await fetch('/demo/token?email=' + encodeURIComponent(email), { credentials: 'same-origin' });
      const body = await response.json();
      if (!response.ok || typeof body.token !== 'string') throw new Error(body.error || 'HTTP ' + response.status);
      remember({ email, token: body.token, exp: expiry(body.token) });
      window.Deskmate.setUserToken(body.token);
      chattingAs = email;
      status.textContent = 'Chatting as ' + select.options[select.selectedIndex].text + ': a new conversation.';
      window.Deskmate.open();
    } catch (error) {
      // Still chatting as before (the gateway may be down): the switch must not say otherwise.
      select.value = chattingAs;
      status.textContent = 'Could not sign in as that customer (' + error.message + '). Still chatting as before; try again in a moment.';
    }
  });
})();
