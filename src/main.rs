fn main() -> std::process::ExitCode {
    wgseg::cli::main()
}
