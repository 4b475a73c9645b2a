// "Approve on your phone" (portal sign-in, passcode reset): wait for the holder's answer on the
// phone and press Continue by itself. The page's form `#push-continue` says which flow it is
// (`data-sign-in` or `data-reset`, holding the id) and what to say once approved (`data-approved`).
// Progressive enhancement only: without this script the Continue button does the same.
// Served from /static (the page's Content-Security-Policy allows no inline script).
(function () {
  'use strict';
  var form = document.getElementById('push-continue');
  if (!form || !window.fetch || !window.JSON) {
    return;
  }
  var signIn = form.getAttribute('data-sign-in');
  var reset = form.getAttribute('data-reset');
  var url = signIn
    ? '/api/v1/self/sign-in/' + encodeURIComponent(signIn) + '?wait=25'
    : reset
      ? '/api/v1/self/reset/' + encodeURIComponent(reset) + '/second-factor?wait=25'
      : null;
  if (!url) {
    return;
  }
  var approved = form.getAttribute('data-approved') || 'Approved. Continuing…';
  var failures = 0;
  var status = document.getElementById('push-status');
  // Once the holder submits a form (say, the app code), its answer decides: typing a code also
  // decides the push, and pressing Continue then would cut that submission short.
  var leaving = false;
  document.addEventListener('submit', function () {
    leaving = true;
  }, true);

  function poll() {
    fetch(url, { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } })
      .then(function (r) {
        if (!r.ok) {
          throw new Error('status ' + r.status);
        }
        return r.json();
      })
      .then(function (s) {
        failures = 0;
        if (leaving) {
          return;
        }
        if (s.state === 'pending') {
          poll();
          return;
        }
        // Approved, denied or expired: the page the server answers says which.
        if (status) {
          status.textContent = s.state === 'approved' ? approved : '';
        }
        leaving = true;
        form.submit();
      })
      .catch(function () {
        // Give up quietly after a few tries: the Continue button still works.
        failures += 1;
        if (!leaving && failures < 5) {
          window.setTimeout(poll, 2000 * failures);
        }
      });
  }

  if (status) {
    status.textContent = 'Waiting for your answer…';
  }
  poll();
})();
