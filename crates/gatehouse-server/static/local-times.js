// Gatehouse: shows the times of an administration page in the viewer's time zone. The server writes each
// time in UTC ("2026-12-07 23:00 UTC") inside <time datetime="2026-12-07 23:00">; this keeps that text as the
// element's title (shown on hover) and replaces it with the local date and time. Without this script the UTC
// text stays, which is still right.
'use strict';
(function () {
  const format = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  for (const element of document.querySelectorAll('time[datetime]')) {
    const utc = element.getAttribute('datetime');
    const at = new Date(utc.replace(' ', 'T') + ':00Z');
    if (Number.isNaN(at.getTime())) {
      continue;
    }
    element.title = utc + ' UTC';
    element.textContent = format.format(at);
  }
})();
