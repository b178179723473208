"""`prompt.chat: true`: a rendered prompt sent as a chat (system message, demonstrations as
user/assistant turns, the query as the last user message), written by the model's own
chat template up to where the assistant's reply starts.

The label word (classification) or the output (generation) then follows the assistant
header, which is how an instruction-tuned model expects to answer. The backend decides how
messages become a prompt (`Backend.chat_prompt`): a local backend writes them with the
tokenizer's template, a hosted chat API is sent the messages themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from unified_prompt.prompts.segments import Demos, Rendered

Message = dict[str, str]
#: Chat messages -> the prompt a backend continues (Backend.chat_prompt for one model).
ChatPrompter = Callable[[Sequence[Message]], Rendered]


def query_messages(prompt: Rendered, system: str | None = None) -> list[Message]:
    """The system message, each demonstration as a user turn and its answer as the
    assistant's, then the query (the prompt's text before the mask) as the user's turn."""
    messages = [{"role": "system", "content": system}] if system else []
    demos = prompt.demos
    for demo in demos.items if demos else ():
        messages.append({"role": "user", "content": demo.prompt.prefix_text()})
        messages.append({"role": "assistant", "content": demo.answer})
    query = Rendered(tuple(s for s in prompt.segments if not isinstance(s, Demos)),
                     prompt.example_id)
    messages.append({"role": "user", "content": query.prefix_text()})
    return messages


def as_chat(prompt: Rendered, system: str | None, prompter: ChatPrompter) -> Rendered:
    """`prompt` as a chat prompt (text after the mask is dropped: the answer is the end of
    the assistant's turn)."""
    chat = prompter(query_messages(prompt, system))
    return Rendered(chat.segments, prompt.example_id, chat.meta)
