// Passkeys in the browser: registering one (#passkey-add), using one as the second factor (#passkey-use) or to
// sign in without a password (#passkey-sign-in). The server sends WebAuthn options as JSON with binary fields in base64url; this turns them
// into what navigator.credentials expects, and the credential back into JSON.
'use strict';
(function () {
  function bytes(text) {
    const base64 = text.replace(/-/g, '+').replace(/_/g, '/');
    const binary = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
    const out = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
    return out.buffer;
  }

  function base64url(buffer) {
    let binary = '';
    for (const b of new Uint8Array(buffer)) binary += String.fromCharCode(b);
    return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  // Optional members the server leaves out are sent as null, which the browser refuses: drop them.
  function withoutNulls(value) {
    if (Array.isArray(value)) return value.map(withoutNulls);
    if (value && typeof value === 'object') {
      const out = {};
      for (const [key, member] of Object.entries(value)) if (member !== null) out[key] = withoutNulls(member);
      return out;
    }
    return value;
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(answer.error || 'The server answered ' + response.status + '.');
    return answer;
  }

  function show(element, message) {
    element.textContent = message;
    element.hidden = false;
  }

  function failure(err) {
    if (err && err.name === 'NotAllowedError') return 'The passkey was not used (cancelled or timed out).';
    if (err && err.name === 'InvalidStateError') return 'This passkey is registered already.';
    return (err && err.message) || String(err);
  }

  const add = document.getElementById('passkey-add');
  if (add) {
    add.addEventListener('submit', async (event) => {
      event.preventDefault();
      const error = document.getElementById('passkey-error');
      error.hidden = true;
      const csrf = add.elements.csrf.value;
      try {
        if (!window.PublicKeyCredential) throw new Error('This browser does not support passkeys.');
        const password = add.elements.password ? add.elements.password.value : '';
        const started = await post('/passkeys/register/start', { csrf, password });
        const options = withoutNulls(started.publicKey);
        options.challenge = bytes(options.challenge);
        options.user.id = bytes(options.user.id);
        for (const credential of options.excludeCredentials || []) credential.id = bytes(credential.id);
        const credential = await navigator.credentials.create({ publicKey: options });
        const finished = await post('/passkeys/register/finish', {
          csrf,
          ceremony: started.ceremony,
          name: add.elements.name.value,
          credential: {
            id: credential.id,
            rawId: base64url(credential.rawId),
            type: credential.type,
            response: {
              attestationObject: base64url(credential.response.attestationObject),
              clientDataJSON: base64url(credential.response.clientDataJSON),
            },
            extensions: credential.getClientExtensionResults(),
          },
        });
        window.location.assign(finished.next);
      } catch (err) {
        show(error, failure(err));
      }
    });
  }

  // A passkey as the second factor (#passkey-use), or signing in with one alone (#passkey-sign-in).
  for (const use of [document.getElementById('passkey-use'), document.getElementById('passkey-sign-in')]) {
    if (!use) continue;
    use.addEventListener('submit', async (event) => {
      event.preventDefault();
      const error = document.getElementById('passkey-error');
      error.hidden = true;
      const csrf = use.elements.csrf.value;
      try {
        if (!window.PublicKeyCredential) throw new Error('This browser does not support passkeys.');
        const area = use.dataset.area;
        const started = await post(use.dataset.start, { csrf, area });
        const options = withoutNulls(started.publicKey);
        options.challenge = bytes(options.challenge);
        for (const credential of options.allowCredentials || []) credential.id = bytes(credential.id);
        const credential = await navigator.credentials.get({ publicKey: options });
        const finished = await post(use.dataset.finish, {
          csrf,
          area,
          ceremony: started.ceremony,
          credential: {
            id: credential.id,
            rawId: base64url(credential.rawId),
            type: credential.type,
            response: {
              authenticatorData: base64url(credential.response.authenticatorData),
              clientDataJSON: base64url(credential.response.clientDataJSON),
              signature: base64url(credential.response.signature),
              userHandle: credential.response.userHandle ? base64url(credential.response.userHandle) : null,
            },
            extensions: credential.getClientExtensionResults(),
          },
        });
        window.location.assign(finished.next);
      } catch (err) {
        show(error, failure(err));
      }
    });
  }
})();
