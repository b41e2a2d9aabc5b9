import { LogoMark } from './Icons';

export function Header({ onHome }: { onHome: () => void }) {
  return (
    <header className="header">
      <div className="header__inner">
        <a
          className="brand"
          href="/"
          onClick={(event) => {
            event.preventDefault();
            onHome();
          }}
        >
          <LogoMark />
          <span className="brand__name">Lookalike</span>
        </a>
        <p className="header__tagline">Find your celebrity twin</p>
      </div>
    </header>
  );
}
