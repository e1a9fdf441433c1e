#[tokio::main]
async fn main() -> std::process::ExitCode {
    dibao_platform::runtime::binary::run::<dibao_gateway::Application>().await
}
