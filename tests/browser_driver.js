// The page side of tests/test_browser.py, installed in every page before it loads:
// find the controls in widget outputs, fingerprint the view, and (JupyterLab only) run
// cells and collect the kernel's errors.

window.wbDrive = (() => {
    // Controls in widget outputs, by kind. One option of a toggle-buttons or radio group
    // is one control: "choose another option" is a click on an option not chosen yet.
    const KINDS = [
        ["option", ".widget-toggle-buttons button"],
        ["option", ".widget-radio-box input[type=radio]"],
        ["button", "button.jupyter-button"],
        ["select", ".widget-dropdown select, .widget-select select"],
        ["select", ".widget-select-multiple select"],
        ["checkbox", ".widget-checkbox input[type=checkbox]"],
        ["slider", ".widget-slider .noUi-handle"],
    ];
    // Controls whose documented effect ends the notebook's cluster: clicked last.
    const LAST = /\bshut\b.*\bdown\b|\bclose (the )?cluster\b/i;
    const outputs = () => [...document.querySelectorAll(".jp-OutputArea-output")];
    const deepAll = (root, css, found = []) => {
        found.push(...root.querySelectorAll(css));
        for (const el of root.querySelectorAll("*"))
            if (el.shadowRoot) deepAll(el.shadowRoot, css, found);
        return found;
    };
    const visible = el => el.getClientRects().length > 0;
    const disabled = el => el.disabled || el.closest("[disabled]") !== null;
    const matches = (el, selectors) => selectors.some(css => el.closest(css));
    const label = (kind, el) => {
        const widget = el.closest(".lm-Widget");
        const described = widget && widget.querySelector(":scope > label.widget-label");
        const icon = el.querySelector("i[class*='fa-']");
        const own = el.tagName === "BUTTON" ? el.innerText.trim() || el.title
                || (icon ? icon.className.replace(/.*\bfa-(?!fw\b)([\w-]+).*/, "$1") : "")
            : kind === "slider" ? "" : (el.closest("label") || {}).innerText || "";
        return [described && described.innerText.trim(), own.trim()].filter(Boolean)
            .join(": ") || el.title || kind;
    };
    const css = el => [...new Set([...el.classList,
                                    ...(el.closest(".lm-Widget") || el).classList])]
        .filter(name => name.startsWith("wb-"));

    function controls() {
        const seen = new Set(), found = [];
        for (const out of outputs())
            for (const [kind, selector] of KINDS)
                for (const el of out.querySelectorAll(selector))
                    if (!seen.has(el)) { seen.add(el); found.push({kind, el}); }
        found.sort((a, b) =>
            a.el.compareDocumentPosition(b.el) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1);
        return found;
    }
    const ready = ({kind, el}) => {
        if (!visible(el) || disabled(el)) return false;
        if (kind === "option") return !(el.checked || el.classList.contains("mod-active"));
        if (kind === "select") return el.options.length > 1;
        return true;
    };
    const state = ({kind, el}) => [kind, label(kind, el), disabled(el), el.checked,
        el.classList.contains("mod-active"), el.value, el.getAttribute("aria-valuenow"),
        kind === "select" ? [...el.selectedOptions].map(o => o.value) : ""].join("|");
    // What was clicked is remembered on the element, and for an option on its group:
    // a toggle-buttons group draws its buttons anew on every change.
    const group = el => el.closest(".widget-toggle-buttons, .widget-radio-box");
    const option = el => el.getAttribute("data-value") || el.value;
    const chosen = g => JSON.parse(g.getAttribute("data-wb-chosen") || "[]");
    const clicked = ({kind, el}) => kind === "option" ? chosen(group(el)).includes(option(el))
        : el.hasAttribute("data-wb-clicked");
    function remember({kind, el}, yes) {
        if (kind !== "option") return yes ? el.setAttribute("data-wb-clicked", "")
                                          : el.removeAttribute("data-wb-clicked");
        const g = group(el), rest = chosen(g).filter(value => value !== option(el));
        g.setAttribute("data-wb-chosen", JSON.stringify(yes ? [...rest, option(el)] : rest));
    }
    // What a click changes by itself, without the kernel: the control, or its group.
    const own = c => c.kind === "option" ? group(c.el) : c.el;

    // Not clicked yet, in this phase, not skipped.
    const due = (c, phase, last, skip) => !clicked(c)
        && !matches(c.el, skip)
        && (phase === "last") === (LAST.test(label(c.kind, c.el)) || matches(c.el, last));

    // Text of the outputs without scripts, and with free-standing numbers blurred: live
    // offsets and clocks tick on their own; roles, names and log lines change on a click.
    function text(root, skip) {
        const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
        const parts = [];
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            const parent = node.parentElement;
            if (!parent || parent.closest("script, style") || (skip && skip.contains(node)))
                continue;
            parts.push(node.data);
        }
        return parts.join(" ").replace(/\b\d+(?:[.,:]\d+)*\b/g, "#").replace(/\s+/g, " ");
    }
    const hash = s => {
        let h = 2166136261;
        for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
        return (h >>> 0).toString(16);
    };
    const canvases = () => outputs().flatMap(out => deepAll(out, "canvas"));
    const pixels = c => { try { return hash(c.toDataURL()) } catch (e) { return "tainted" } };

    return {
        controls,
        // Mark the next control to click (phase "main", or "last"), or return null.
        next(phase, last, skip, settings) {
            for (const el of document.querySelectorAll("[data-wb-target], [data-wb-own]")) {
                el.removeAttribute("data-wb-target");
                el.removeAttribute("data-wb-own");
            }
            const c = controls().find(c => due(c, phase, last, skip) && ready(c));
            if (!c) return null;
            c.el.setAttribute("data-wb-target", "");
            own(c).setAttribute("data-wb-own", "");
            remember(c, true);
            return {kind: c.kind, label: label(c.kind, c.el), css: css(c.el),
                    setting: settings.some(name => label(c.kind, c.el).startsWith(name))
                        || c.el.matches(".widget-play button:has(.fa-retweet)"),  // loop on/off
                    options: c.kind === "select" ? c.el.options.length : 0,
                    selected: c.kind === "select" ? c.el.selectedIndex : null,
                    max: c.el.getAttribute("aria-valuemax"),
                    now: c.el.getAttribute("aria-valuenow")};
        },
        // The marked control turned off before the click: due again, three times at most.
        retry() {
            const el = document.querySelector("[data-wb-target]");
            const c = el && controls().find(c => c.el === el);
            if (!c) return;
            const tries = Number(c.el.getAttribute("data-wb-tries") || 0) + 1;
            c.el.setAttribute("data-wb-tries", String(tries));
            if (tries < 3) remember(c, false);
        },
        // Controls of this phase still to click but off for now (busy, say).
        waiting: (phase, last, skip) => controls().filter(
            c => due(c, phase, last, skip) && visible(c.el) && !ready(c)).length,
        hasReady: (phase, last, skip) => controls().some(
            c => due(c, phase, last, skip) && ready(c)),
        unclicked: () => controls().filter(c => !clicked(c))
            .map(c => label(c.kind, c.el)),
        // Canvases drawn the same twice, a stretch of time apart, are still; only those
        // count in the fingerprint (a chart of the last seconds redraws on its own).
        calibrate() {
            for (const c of canvases()) {
                const now = pixels(c);
                c.wbStill = c.wbPixels === undefined ? undefined : c.wbPixels === now;
                c.wbPixels = now;
            }
        },
        // The view; without the control being clicked unless asked (its own look
        // changes whether or not the kernel heard the click).
        fingerprint(withTarget) {
            const skip = withTarget ? null : document.querySelector("[data-wb-own]");
            const kept = el => !(skip && skip.contains(el));
            const parts = outputs().map(out => text(out, skip));
            for (const c of controls()) if (kept(c.el)) parts.push(state(c));
            parts.push("widgets " + outputs().reduce((n, out) =>
                n + [...out.querySelectorAll(".jupyter-widgets")].filter(kept).length, 0));
            for (const c of canvases()) if (c.wbStill) parts.push(pixels(c));
            return hash(parts.join("\n"));
        },
        loadingWidgets: () => outputs().filter(out => /Loading widget/.test(out.innerText)).length,
    };
})();

window.wbLab = {
    errors: [],
    // Errors the kernel reports, from cells and from widget callbacks alike.
    watch() {
        const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
        kernel.iopubMessage.connect((_, msg) => {
            const c = msg.content;
            if (msg.header.msg_type === "error") {    // with the frames it came through
                const frames = (c.traceback || [])
                    .map(block => block.replace(/\x1b\[[0-9;]*m/g, "").split("\n")[0])
                    .filter(line => line.startsWith("File "));
                this.errors.push([...frames, `${c.ename}: ${c.evalue}`].join("\n"));
            } else if (msg.header.msg_type === "stream" && /Traceback \(most recent/.test(c.text))
                this.errors.push(c.text);
        });
    },
    // Run the code cells with (teardown) or without the "teardown" tag, top to bottom.
    async run(teardown) {
        const notebook = window.jupyterapp.shell.currentWidget.content;
        const run = window.wbRun = {done: false, ran: 0, failed: null};
        for (let i = 0; i < notebook.widgets.length; i++) {
            const cell = notebook.widgets[i];
            if (cell.model.type !== "code") continue;
            if ((cell.model.getMetadata("tags") || []).includes("teardown") !== teardown) continue;
            notebook.activeCellIndex = i;
            notebook.deselectAll();
            const ok = await window.jupyterapp.commands.execute("notebook:run-cell");
            run.ran += 1;
            if (ok === false) { run.failed = i; break; }
        }
        run.done = true;
    },
    // Run the first code cell whose source contains text.
    async runCellWith(text) {
        const notebook = window.jupyterapp.shell.currentWidget.content;
        const index = notebook.widgets.findIndex(
            cell => cell.model.sharedModel.getSource().includes(text));
        if (index < 0) throw new Error(`no cell contains ${text}`);
        notebook.activeCellIndex = index;
        notebook.deselectAll();
        await window.jupyterapp.commands.execute("notebook:run-cell");
    },
    errorOutputs() {
        const notebook = window.jupyterapp.shell.currentWidget.content;
        return notebook.widgets.flatMap((cell, i) => cell.model.type !== "code" ? [] :
            cell.model.outputs.toJSON().filter(o => o.output_type === "error")
                .map(o => `cell ${i}: ${o.ename}: ${o.evalue}`));
    },
};
