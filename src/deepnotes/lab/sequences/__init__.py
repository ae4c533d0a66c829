"""Chapter: sequences. recurrent.py: long-range memory of RNN/LSTM/GRU, their parameter counts,
gradient clipping, bidirectional RNNs (C35, C36, C37, C51); attention.py: self-attention against
recurrence, positions, padding masks, soft and hard attention, several heads (C52-C56);
translation.py: attention in seq2seq by source length (C38)."""
