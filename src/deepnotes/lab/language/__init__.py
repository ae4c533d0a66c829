"""Chapter: language models. runs.py: training a language model for the chapter's experiments
(train_lm, through the language-model task); perplexity.py: what perplexity measures and the n-gram /
RNN / transformer ladder (C61); contextual.py: contextual against static vectors (C60);
pretrain.py: pre-training then fine-tuning (C62) and few-shot prompting (C63); rlhf.py: a reward
model from preferences and policy-gradient fine-tuning with a KL penalty (C64)."""
