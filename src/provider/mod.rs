//! Provider shapes: the materialised session as OpenAI chat-completions messages and as
//! Anthropic Messages (filled in below).
