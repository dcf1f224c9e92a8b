"""Model surgery for fine-tuning: freeze what should keep its features, swap the head, and put a
pretrained model into one of the three states (predict, train the head, train everything)."""
