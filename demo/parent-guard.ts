// Preloaded (node --import) into every process the mini-mesh starts: once the process that started it is gone, it sends itself SIGTERM, so even a SIGKILLed demo or test runner leaves no orphans.
//
// Node has no PR_SET_PDEATHSIG; polling our parent's pid is the portable equivalent. When the parent
// dies we are re-parented (to init or a subreaper) and process.ppid changes. SIGTERM, not exit(): the
// sidecar drains and the control plane closes its store, as they do on any SIGTERM. Sent once, because
// the control plane listens with process.once and a second SIGTERM would kill it mid-close.
const parent = process.ppid;
const timer = setInterval(() => {
  if (process.ppid === parent) return;
  clearInterval(timer);
  process.kill(process.pid, 'SIGTERM');
}, 500);
timer.unref();
