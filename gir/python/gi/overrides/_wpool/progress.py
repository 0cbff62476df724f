# SPDX-License-Identifier: LGPL-2.1-or-later
#
# MPIRE's progress bar: a tqdm bar of a map's items, in one of tqdm's
# styles, driven by the pool's progress on the thread that waits for the
# map (the caller's, for map() and imap()).

import importlib.util
import warnings

_STYLES = ('std', 'rich', 'notebook')


def _check_style(style):
    """Refuses a style that is none of tqdm's, with or without a bar, as
    MPIRE does."""
    if style == 'dashboard':
        raise ValueError("progress_bar_style='dashboard' is MPIRE's web dashboard, which libwpool does not have: "
                         "use 'std', 'rich' or 'notebook', or read the pool's progress (n-completed, eta)")
    if style is not None and style not in _STYLES:
        raise ValueError('progress_bar_style must be one of {} or None, not {!r}'.format(
            ', '.join(repr(name) for name in _STYLES), style))


def _tqdm_class(style):
    """tqdm's class for MPIRE's @style, or an error that says what is
    missing: 'rich' needs rich (Debian: python3-rich), 'notebook'
    ipywidgets in a notebook."""
    _check_style(style)
    style = style or 'std'
    try:
        import tqdm
    except ImportError:
        raise ImportError('progress_bar=True needs tqdm, which is not installed (Debian: python3-tqdm; '
                          'pip: tqdm)') from None
    if style == 'std':
        from tqdm import std
        return std.tqdm
    if style == 'rich':
        if importlib.util.find_spec('rich') is None:
            raise ImportError("progress_bar_style='rich' needs rich, which is not installed "
                              "(Debian: python3-rich; pip: rich)")
        with warnings.catch_warnings():
            # tqdm.rich is "experimental": it says so at import.
            warnings.simplefilter('ignore', tqdm.TqdmExperimentalWarning)
            from tqdm import rich as tqdm_rich
        return tqdm_rich.tqdm
    if importlib.util.find_spec('ipywidgets') is None:
        raise ImportError("progress_bar_style='notebook' needs ipywidgets, which is not installed "
                          "(pip: ipywidgets), and a Jupyter notebook")
    from tqdm import notebook
    return notebook.tqdm


def _bar_options(options, total):
    """tqdm's keyword arguments: MPIRE's defaults, the map's own, then
    the total and leave, which are the map's to set (with a warning, as
    MPIRE's)."""
    given = dict(options.progress_bar_options or {})
    for name, why in (('total', 'set the number of items with iterable_len'), ('leave', '')):
        if name in given:
            warnings.warn("The progress bar's {!r} is the map's own{}".format(name, ': ' + why if why else ''),
                          RuntimeWarning, stacklevel=5)
    if options.progress_bar_style == 'rich' and 'position' in given:
        raise NotImplementedError("progress_bar_options: 'position' is not supported by rich progress bars")
    return {'position': 0, 'dynamic_ncols': True, 'mininterval': 0.1, 'maxinterval': 0.5, **given,
            'total': total, 'leave': True}


class _Progress:
    """A map's progress bar, or nothing without progress_bar=True. Made
    before the map starts, so that a bad style or option fails it first."""

    def __init__(self, options, total):
        self.bar = None
        if not options.progress_bar:
            return
        bar_class = _tqdm_class(options.progress_bar_style)
        kwargs = _bar_options(options, total)
        if options.progress_bar_style == 'rich' and total is None:
            raise ValueError("progress_bar_style='rich' draws a bar of a known length: pass iterable_len, or "
                             "use the 'std' style for an iterable with no length")
        try:
            with warnings.catch_warnings():
                # tqdm.rich says it is experimental as each bar starts.
                warnings.filterwarnings('ignore', 'rich is experimental')
                self.bar = bar_class(**kwargs)
        except (TypeError, KeyError) as error:
            raise ValueError("progress_bar_options: {} (see tqdm.tqdm() for what it takes)".format(error)) from None

    def update(self, done):
        """@done items have completed (never fewer than before)."""
        if self.bar is not None and done > self.bar.n:
            self.bar.update(done - self.bar.n)

    def set_total(self, total):
        """The number of items, once a map of an iterable with no length
        has read it all."""
        if self.bar is not None and self.bar.total != total:
            self.bar.total = total
            self.bar.refresh()

    def close(self, completed, n_items):
        """The map ended: the bar full at @n_items if it @completed, else
        left where it stopped."""
        if self.bar is None:
            return
        if completed:
            self.set_total(n_items)
            self.bar.n = n_items
            self.bar.refresh()
        bar, self.bar = self.bar, None
        bar.close()
